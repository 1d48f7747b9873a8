"""The tracer of one run: spans run → milestone → tool call → approval / attempt, nested in whatever span is
current (Prefect's flow-run or task-run span under Prefect), or under the run's trace context carried by value
(``CallInput.traceparent``) when a call runs in another process.

Every attribute and exception text passes the run's ``Redactor`` before it reaches the span, so neither
``traces.jsonl`` nor the OTLP endpoint sees a secret. Attribute values come from vocabulary.py.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NoOpTracer, Span, Status, StatusCode, Tracer

from codex_orchestrator import __version__
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.redact import Redactor
from codex_orchestrator.telemetry.config import ExportState
from codex_orchestrator.telemetry.guard import ExportCounters
from codex_orchestrator.telemetry.process import FILES, ProcessTelemetry, process_telemetry
from codex_orchestrator.telemetry.vocabulary import RUN_ID, TASK_ID

if TYPE_CHECKING:
    from codex_orchestrator.telemetry.metrics import CallMetrics, Measurement

AttributeValue = str | bool | int | float
TRACEPARENT = "traceparent"


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to carry to another process (None without one)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    # propagate loads its propagators from entry points at import (a scan of every installed distribution):
    # only a process that carries a trace across needs it, not a one-call `exec`.
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT)


@contextmanager
def joined(traceparent: str | None) -> Iterator[None]:
    """Make ``traceparent`` the parent of the spans started inside, unless a span is already current (the
    Prefect task-run span of this call, in this process): a call in another process joins its run's trace."""
    if not traceparent or trace.get_current_span().get_span_context().is_valid:
        yield
        return
    from opentelemetry import propagate

    token = otel_context.attach(propagate.extract({TRACEPARENT: traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)


class RunTracer:
    """The tracer of one run in this process. ``span(...)`` records a redacted error and sets the status.

    ``traces_path`` None: no ``traces.jsonl`` (a handle that only reads). ``export`` False: the run's spans
    and metrics stay here (its request's ``telemetry.export``)."""

    def __init__(
        self,
        traces_path: Path | None,
        *,
        run_id: str,
        task_id: str,
        redact: Redactor,
        export: bool = True,
    ) -> None:
        self._process: ProcessTelemetry = process_telemetry()
        self.export = export and self._process.config.export is ExportState.OTLP
        provider = self._process.tracer_provider(self.export)
        self._tracer: Tracer = (
            provider.get_tracer("codex_orchestrator", __version__) if provider is not None else NoOpTracer()
        )
        self.metrics: CallMetrics | None = self._process.metrics if self.export else None
        self._common: dict[str, AttributeValue] = {RUN_ID: run_id, TASK_ID: task_id}
        self._redact = redact
        self._run_id = run_id
        self._open = 0  # spans of this handle not yet ended
        self._closing = False
        self._lock = threading.Lock()
        self._registered = traces_path is not None and provider is not None
        if self._registered:
            assert traces_path is not None
            FILES.register(run_id, traces_path, redact)

    @property
    def export_state(self) -> ExportState:
        config = self._process.config.export
        if config is ExportState.OTLP and not self.export:
            return ExportState.OFF
        return config

    @property
    def endpoint(self) -> str | None:
        return self._process.config.endpoint_label if self.export else None

    @property
    def protocol(self) -> str | None:
        return self._process.config.protocol.value if self.export else None

    def export_counters(self) -> dict[str, ExportCounters]:
        return self._process.counters() if self.export else {}

    def flush(self) -> None:
        """At a run's end: push its spans and metrics out (bounded; see process.py)."""
        if self.export:
            self._process.flush()

    @contextmanager
    def span(self, name: str, **attributes: AttributeValue | None) -> Iterator[Span]:
        attrs: dict[str, AttributeValue] = dict(self._common)
        attrs.update({k: self._clean(v) for k, v in attributes.items() if v is not None})
        with self._lock:
            self._open += 1
        try:
            with self._tracer.start_as_current_span(
                name, attributes=attrs, record_exception=False, set_status_on_exception=False
            ) as span:
                try:
                    yield span
                except BaseException as exc:
                    self._record_exception(span, exc)
                    raise
        finally:
            with self._lock:
                self._open -= 1
                last = self._open == 0 and self._closing
            if last:
                self._unregister()

    def start(
        self, name: str, parent: otel_context.Context | None, **attributes: AttributeValue | None
    ) -> Span:
        """A span that outlives the code that starts it (an agent's turn, opened and closed by its events):
        the caller ends it with ``end``. ``parent``: the context it nests in (None: the current one)."""
        attrs: dict[str, AttributeValue] = dict(self._common)
        attrs.update({k: self._clean(v) for k, v in attributes.items() if v is not None})
        with self._lock:
            self._open += 1
        return self._tracer.start_span(name, context=parent, attributes=attrs, record_exception=False)

    def end(self, span: Span) -> None:
        span.end()
        with self._lock:
            self._open -= 1
            last = self._open == 0 and self._closing
        if last:
            self._unregister()

    def _record_exception(self, span: Span, exc: BaseException) -> None:
        message = self._redact(str(exc))
        span.record_exception(
            exc,
            attributes={
                "exception.message": message,
                "exception.stacktrace": self._redact("".join(traceback.format_exception(exc))),
            },
        )
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))

    def _clean(self, value: AttributeValue | None) -> AttributeValue:
        return self._redact(value) if isinstance(value, str) else value  # type: ignore[return-value]

    def set(self, span: Span, **attributes: AttributeValue | None) -> None:
        for key, value in attributes.items():
            if value is not None:
                span.set_attribute(key, self._clean(value))

    def fail(self, span: Span, description: str) -> None:
        span.set_status(Status(StatusCode.ERROR, self._redact(description)))

    # -- metrics (no-ops without metrics export) -----------------------------------------------------------
    def record_call(self, call: ToolCallRecord) -> None:
        if self.metrics is not None:
            from codex_orchestrator.telemetry.metrics import call_measurements

            self.metrics.record(call_measurements(call))

    def record_approval_wait(self, wait_ms: float, *, purpose: str, decision: str) -> None:
        if self.metrics is not None:
            self.metrics.approval_wait(wait_ms, purpose=purpose, decision=decision)

    def record_stream_latency(self, p50_ms: float, p95_ms: float, samples: int) -> None:
        if self.metrics is not None:
            self.metrics.stream_latency(p50_ms, p95_ms, samples)

    def record_measurements(self, measurements: Iterable[Measurement]) -> None:
        if self.metrics is not None:
            self.metrics.record(measurements)

    def shutdown(self) -> None:
        """This handle is done: its run's file is no longer written from here once its open spans (a run span
        around the run's finish) have ended. The process's providers stay; they are shut down at exit."""
        with self._lock:
            self._closing = True
            idle = self._open == 0
        if idle:
            self._unregister()

    def _unregister(self) -> None:
        with self._lock:
            registered, self._registered = self._registered, False
        if registered:
            FILES.unregister(self._run_id, self._redact)
