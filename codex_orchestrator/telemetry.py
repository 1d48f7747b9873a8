"""OpenTelemetry traces for a run: one span per run, milestone, tool call, approval and attempt.

Spans go to ``traces.jsonl`` in the run directory (one finished span a line, OTLP-like JSON) and, when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and the OTLP exporter is installed, to that collector too. Attribute
values use a closed vocabulary (``codex.approval.source`` ∈ not-required|cache|human|policy,
``codex.outcome`` ∈ succeeded|failed|denied|timed_out|escalated).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from codex_orchestrator import __version__
from codex_orchestrator.redact import Redactor

AttributeValue = str | bool | int | float


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one JSON line; secrets are scrubbed from its values before serialising
    (exception messages and stack traces that OpenTelemetry records included)."""

    def __init__(self, path: Path, redact: Redactor | None = None) -> None:
        self._path = path
        self._redact = redact or Redactor()
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [
            json.dumps(self._redact.tree(_span_dict(s)), separators=(",", ":"), ensure_ascii=False) + "\n"
            for s in spans
        ]
        with self._lock, self._path.open("a", encoding="utf-8") as handle:
            handle.writelines(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _span_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": f"{ctx.trace_id:032x}" if ctx else None,
        "span_id": f"{ctx.span_id:016x}" if ctx else None,
        "parent_span_id": f"{parent.span_id:016x}" if parent else None,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
    }


class RunTracer:
    """The tracer of one run. ``span(...)`` is a context manager that records errors and sets the status."""

    def __init__(self, traces_path: Path | None, *, run_id: str, task_id: str, redact: Redactor) -> None:
        resource = Resource.create(
            {"service.name": "codex-orchestrator", "service.version": __version__, "codex.run_id": run_id}
        )
        self._provider = TracerProvider(resource=resource)
        if traces_path is not None:
            self._provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(traces_path, redact)))
        _maybe_add_otlp(self._provider)
        self._tracer: Tracer = self._provider.get_tracer("codex_orchestrator", __version__)
        self._common = {"codex.run_id": run_id, "codex.task_id": task_id}
        self._redact = redact

    @contextmanager
    def span(self, name: str, **attributes: AttributeValue | None) -> Iterator[Span]:
        attrs: dict[str, AttributeValue] = dict(self._common)
        attrs.update({k: self._clean(v) for k, v in attributes.items() if v is not None})
        with self._tracer.start_as_current_span(
            name, attributes=attrs, record_exception=True, set_status_on_exception=True
        ) as span:
            yield span

    def _clean(self, value: AttributeValue | None) -> AttributeValue:
        return self._redact(value) if isinstance(value, str) else value  # type: ignore[return-value]

    def set(self, span: Span, **attributes: AttributeValue | None) -> None:
        for key, value in attributes.items():
            if value is not None:
                span.set_attribute(key, self._clean(value))

    @staticmethod
    def fail(span: Span, description: str) -> None:
        span.set_status(Status(StatusCode.ERROR, description))

    def shutdown(self) -> None:
        self._provider.shutdown()


def _maybe_add_otlp(provider: TracerProvider) -> None:
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return
    try:  # optional dependency: opentelemetry-exporter-otlp
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        return
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
