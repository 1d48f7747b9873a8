"""The overload guard around the OTLP exporters: a dead or slow endpoint never fails, slows or floods a run.

Export runs on the SDK's background threads (batch span processor, periodic metric reader); this wrapper sits
between them and the real OTLP exporter. While the endpoint fails, attempts back off exponentially up to a
ceiling (``ExportBackoff``: at most ``MAX_ATTEMPTS_PER_MINUTE`` attempts a minute per signal); batches that
arrive meanwhile wait in a bounded buffer and go with the next attempt, the oldest dropped (and counted) when
it is full. Failures are counted (``ExportCounters``) and logged once per process, not once per batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger(__name__)

MAX_ATTEMPTS_PER_MINUTE = 3
# The first retry after a failure waits BASE, each further one twice as long, never more than CEILING: with
# 20 s and 60 s, a dead endpoint sees attempts at 0, 20, 60, 120, ... s: never more than 3 in any minute.
BACKOFF_BASE_S = 20.0
BACKOFF_CEILING_S = 60.0
# Spans kept for the next attempt while the endpoint is down (the batch processor's own queue is 2048).
MAX_PENDING_SPANS = 2048


def backoff_delay_s(failures: int) -> float:
    """How long to wait after the ``failures``-th consecutive failed attempt (pure)."""
    if failures <= 0:
        return 0.0
    return float(min(BACKOFF_BASE_S * 2 ** (failures - 1), BACKOFF_CEILING_S))


@dataclass
class ExportCounters:
    """What one signal's guard saw since the process started (read by the run that records them)."""

    attempts: int = 0
    failures: int = 0  # attempts that failed
    dropped: int = 0  # items (spans, metric collections) given up on
    last_error: str | None = None

    def copy(self) -> ExportCounters:
        return ExportCounters(self.attempts, self.failures, self.dropped, self.last_error)


@dataclass
class ExportBackoff:
    """Whether an attempt may go now, given the failures so far; ``clock`` is injectable for tests."""

    clock: Callable[[], float] = time.monotonic
    consecutive_failures: int = 0
    next_attempt_at: float = 0.0

    def may_attempt(self) -> bool:
        return self.clock() >= self.next_attempt_at

    def succeeded(self) -> None:
        self.consecutive_failures = 0
        self.next_attempt_at = 0.0

    def failed(self) -> None:
        self.consecutive_failures += 1
        self.next_attempt_at = self.clock() + backoff_delay_s(self.consecutive_failures)


@dataclass
class Guard:
    """The part both signals share: backoff, counters, the once-only log line, and a shut-down flag."""

    signal: str
    backoff: ExportBackoff = field(default_factory=ExportBackoff)
    counters: ExportCounters = field(default_factory=ExportCounters)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False
    _logged: bool = False

    def attempt(self, send: Callable[[], bool], describe: Callable[[], str]) -> bool:
        """Count and make one attempt; True on success. ``send`` must not raise (errors count as failure)."""
        self.counters.attempts += 1
        try:
            ok = send()
            error = None if ok else describe()
        except Exception as exc:  # a foreign exporter's error must never reach the SDK's thread
            ok, error = False, f"{type(exc).__name__}: {exc}"
        if ok:
            self.backoff.succeeded()
            return True
        self.counters.failures += 1
        self.counters.last_error = error
        self.backoff.failed()
        if not self._logged:
            self._logged = True
            log.warning(
                "OTLP %s export failed (%s); retrying with backoff, at most %d attempts a minute; failures are "
                "counted in each run's manifest (telemetry.export_failures)",
                self.signal,
                error,
                MAX_ATTEMPTS_PER_MINUTE,
            )
        return False


class GuardedSpanExporter(SpanExporter):
    """Wraps an OTLP span exporter with the guard (see the module docstring)."""

    def __init__(self, inner: SpanExporter, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._inner = inner
        self.guard = Guard("traces", backoff=ExportBackoff(clock=clock))
        self._pending: deque[ReadableSpan] = deque()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        g = self.guard
        with g.lock:
            if g.closed:
                g.counters.dropped += len(spans)
                return SpanExportResult.FAILURE
            self._pending.extend(spans)
            overflow = len(self._pending) - MAX_PENDING_SPANS
            for _ in range(max(overflow, 0)):
                self._pending.popleft()
            g.counters.dropped += max(overflow, 0)
            if not g.backoff.may_attempt():
                return SpanExportResult.SUCCESS  # kept for the next attempt
            batch = list(self._pending)
            ok = g.attempt(
                lambda: self._inner.export(batch) is SpanExportResult.SUCCESS,
                lambda: "the endpoint refused or could not be reached",
            )
            if ok:
                self._pending.clear()
            return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        with self.guard.lock:
            self.guard.closed = True
            self.guard.counters.dropped += len(self._pending)  # never sent: the endpoint was down at the end
            self._pending.clear()
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
