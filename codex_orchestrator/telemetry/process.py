"""This process's telemetry: one tracer provider and one meter provider, built on first use, shut down at exit.

The exporting tracer provider becomes OpenTelemetry's global one, so Prefect's own flow-run and task-run spans
(``prefect.telemetry``) go through it too, and ours nest in theirs. Spans reach ``traces.jsonl`` through
``RunFilesProcessor`` (each run's file, chosen by the span's ``codex.run_id``) and the OTLP endpoint through a
batch processor and the overload guard. A run whose request turns export off uses the second, local provider
(``traces.jsonl`` only). Shutdown is bounded: ``SHUTDOWN_DEADLINE_S`` whatever the endpoint does.
"""

from __future__ import annotations

import atexit
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from codex_orchestrator import __version__
from codex_orchestrator.telemetry.config import ExportState, OtelConfig, Protocol, config_from_env
from codex_orchestrator.telemetry.guard import ExportCounters, GuardedSpanExporter
from codex_orchestrator.telemetry.jsonl import RunFilesProcessor

if TYPE_CHECKING:  # the metrics SDK is imported only when metrics are exported (start-up of `exec`)
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter

    from codex_orchestrator.telemetry.guard_metrics import GuardedMetricExporter
    from codex_orchestrator.telemetry.metrics import CallMetrics

SHUTDOWN_DEADLINE_S = 5.0
# At the end of a run its spans and metrics are flushed for at most this long, so that the manifest can
# record whether they got out; a guard in backoff returns at once (no network).
RUN_FLUSH_DEADLINE_S = 2.0
# Without OTEL_METRIC_EXPORT_INTERVAL (ms), metrics are sent every 30 s and at each run's end.
DEFAULT_METRIC_INTERVAL_MS = 30_000


class _Switch(SpanProcessor):
    """The export seat in the global provider: the current batch processor, or none (export off, reset)."""

    def __init__(self) -> None:
        self.target: SpanProcessor | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        target = self.target
        if target is not None:
            target.on_end(span)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        target = self.target
        return target.force_flush(timeout_millis) if target is not None else True


# Built once per process and never shut down (the global provider cannot be replaced): what changes with the
# configuration (reset in tests and the benchmark) sits behind ``_EXPORT``.
FILES = RunFilesProcessor()
_EXPORT = _Switch()
_PROVIDERS: tuple[TracerProvider, TracerProvider] | None = None


def _providers(resource: Resource) -> tuple[TracerProvider, TracerProvider]:
    """(exporting, local): the global provider with the files and export seats, and a files-only one."""
    global _PROVIDERS
    if _PROVIDERS is None:
        local = TracerProvider(resource=resource)
        local.add_span_processor(FILES)
        exporting = _global_provider(resource)
        exporting.add_span_processor(FILES)
        exporting.add_span_processor(_EXPORT)
        _PROVIDERS = (exporting, local)
    return _PROVIDERS


@dataclass
class ProcessTelemetry:
    config: OtelConfig
    exporting: TracerProvider | None  # None: the SDK is disabled
    local: TracerProvider | None
    batch: BatchSpanProcessor | None = None
    meters: MeterProvider | None = None
    span_guard: GuardedSpanExporter | None = None
    metric_guard: GuardedMetricExporter | None = None
    metrics: CallMetrics | None = None
    _shut: bool = field(default=False, init=False)

    def tracer_provider(self, export: bool) -> TracerProvider | None:
        return self.exporting if export else self.local

    def counters(self) -> dict[str, ExportCounters]:
        out: dict[str, ExportCounters] = {}
        for guarded in (self.span_guard, self.metric_guard):
            if guarded is not None:
                with guarded.guard.lock:
                    out[guarded.guard.signal] = guarded.guard.counters.copy()
        return out

    def flush(self, deadline_s: float = RUN_FLUSH_DEADLINE_S) -> None:
        """Push what is buffered to the endpoint, waiting at most ``deadline_s`` (never raises)."""
        calls: list[Callable[[], object]] = []
        if self.batch is not None:
            batch = self.batch
            calls.append(lambda: batch.force_flush(int(deadline_s * 1000)))
        if self.meters is not None:
            meters = self.meters
            calls.append(lambda: meters.force_flush(int(deadline_s * 1000)))
        _bounded(calls, deadline_s)

    def shutdown(self, deadline_s: float = SHUTDOWN_DEADLINE_S) -> None:
        """Flush and close the exporters; returns within ``deadline_s`` even if the endpoint hangs."""
        if self._shut:
            return
        self._shut = True
        calls: list[Callable[[], object]] = []
        if self.batch is not None:
            if _EXPORT.target is self.batch:
                _EXPORT.target = None
            calls.append(self.batch.shutdown)
        if self.meters is not None:
            meters = self.meters
            calls.append(lambda: meters.shutdown(timeout_millis=deadline_s * 1000))
        _bounded(calls, deadline_s)


def _bounded(calls: list[Callable[[], object]], deadline_s: float) -> None:
    """Run ``calls`` at once on daemon threads and wait for them at most ``deadline_s`` in all."""
    threads = [threading.Thread(target=_quiet(c), name="otel-flush", daemon=True) for c in calls]
    for t in threads:
        t.start()
    end = time.monotonic() + deadline_s
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))


def _quiet(call: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            call()
        except Exception:  # telemetry never fails the process
            return

    return run


_LOCK = threading.Lock()
_CURRENT: ProcessTelemetry | None = None


def process_telemetry() -> ProcessTelemetry:
    """This process's telemetry, built on first use from the environment."""
    global _CURRENT
    with _LOCK:
        if _CURRENT is None:
            _CURRENT = _build(config_from_env(os.environ))
            atexit.register(_CURRENT.shutdown)
        return _CURRENT


def reset_process_telemetry() -> None:
    """Shut this process's exporters down and forget the configuration: the next use reads the environment
    again (tests and the benchmark switch endpoints this way)."""
    global _CURRENT
    with _LOCK:
        current, _CURRENT = _CURRENT, None
    if current is not None:
        atexit.unregister(current.shutdown)
        current.shutdown()


def _build(config: OtelConfig) -> ProcessTelemetry:
    if config.export is ExportState.SDK_DISABLED:
        return ProcessTelemetry(config=config, exporting=None, local=None)
    resource = Resource.create({"service.name": config.service_name, "service.version": __version__})
    exporting, local = _providers(resource)
    telemetry = ProcessTelemetry(config=config, exporting=exporting, local=local)
    if config.export is not ExportState.OTLP:
        return telemetry
    if config.traces_endpoint:
        telemetry.span_guard = GuardedSpanExporter(_span_exporter(config))
        telemetry.batch = BatchSpanProcessor(telemetry.span_guard)
        _EXPORT.target = telemetry.batch
    if config.metrics_endpoint:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        from codex_orchestrator.telemetry.guard_metrics import GuardedMetricExporter
        from codex_orchestrator.telemetry.metrics import CallMetrics

        telemetry.metric_guard = GuardedMetricExporter(_metric_exporter(config))
        interval = int(os.environ.get("OTEL_METRIC_EXPORT_INTERVAL") or DEFAULT_METRIC_INTERVAL_MS)
        reader = PeriodicExportingMetricReader(
            telemetry.metric_guard,
            export_interval_millis=interval,
            export_timeout_millis=config.timeout_s * 1000,
        )
        telemetry.meters = MeterProvider(resource=resource, metric_readers=[reader])
        telemetry.metrics = CallMetrics(telemetry.meters)
    return telemetry


def _global_provider(resource: Resource) -> TracerProvider:
    """OpenTelemetry's global tracer provider: ours, unless the application installed an SDK one already
    (then our processors join it, and its own exporters stay as they are)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(resource=resource)
    trace.set_tracer_provider(provider)
    # set_tracer_provider is once per process; if another thread won the race, use the one that is set.
    installed = trace.get_tracer_provider()
    return installed if isinstance(installed, TracerProvider) else provider


def _span_exporter(config: OtelConfig) -> SpanExporter:
    headers = dict(config.headers)
    if config.protocol is Protocol.GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans

        return GrpcSpans(endpoint=config.traces_endpoint, headers=headers, timeout=config.timeout_s)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans

    return _single_attempt(
        HttpSpans(endpoint=config.traces_endpoint, headers=headers, timeout=config.timeout_s)
    )


def _metric_exporter(config: OtelConfig) -> MetricExporter:
    headers = dict(config.headers)
    if config.protocol is Protocol.GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics

        return GrpcMetrics(endpoint=config.metrics_endpoint, headers=headers, timeout=config.timeout_s)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetrics

    return _single_attempt(
        HttpMetrics(endpoint=config.metrics_endpoint, headers=headers, timeout=config.timeout_s)
    )


_E = TypeVar("_E")


def _single_attempt(exporter: _E) -> _E:
    """The guard is the one retry layer: the HTTP exporter's own backoff loop (up to 6 tries within its timeout)
    is cut to one request, so that a guard attempt is one request (plus the reconnect the client makes at once
    on a stale pooled connection) and a refused connection fails in milliseconds. (gRPC's exporter has no such
    seam: its retries stay within its timeout.)"""
    client = getattr(exporter, "_client", None)
    if client is not None and hasattr(client, "_compute_backoff"):
        client._compute_backoff = lambda _retry: math.inf  # a backoff longer than any deadline: give up
    return exporter
