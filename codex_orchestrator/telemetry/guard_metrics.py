"""The overload guard (guard.py) in front of the OTLP metric exporter. Its own module: the metrics SDK is only
imported when metrics are exported."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from codex_orchestrator.telemetry.guard import ExportBackoff, Guard


class GuardedMetricExporter(MetricExporter):
    """Wraps an OTLP metric exporter with the guard; keeps only the newest collection while down."""

    def __init__(self, inner: MetricExporter, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner = inner
        self.guard = Guard("metrics", backoff=ExportBackoff(clock=clock))

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        g = self.guard
        with g.lock:
            if g.closed or not g.backoff.may_attempt():
                g.counters.dropped += 1  # cumulative: the next collection carries the same totals
                return MetricExportResult.FAILURE
            ok = g.attempt(
                lambda: (
                    self._inner.export(metrics_data, timeout_millis=timeout_millis)
                    is MetricExportResult.SUCCESS
                ),
                lambda: "the endpoint refused or could not be reached",
            )
            if not ok:
                g.counters.dropped += 1
            return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        with self.guard.lock:
            self.guard.closed = True
        self._inner.shutdown(timeout_millis=timeout_millis)
