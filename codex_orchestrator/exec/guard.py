"""The streaming guard: watches output delivery latency and decides, once, to fall back to buffered delivery.

Pure bookkeeping without threads; ``session.py`` feeds it one latency per delivered event.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

DeliveryMode = Literal["streaming", "buffered"]

_MS_PER_S = 1000.0


@dataclass(frozen=True)
class GuardConfig:
    """When streaming is judged too slow and how buffered delivery then behaves.

    The guard trips the first time the P95 delivery latency over the last ``window`` events exceeds
    ``p95_threshold_ms``, once at least ``min_samples`` events were seen. Buffered delivery then coalesces
    queued output into one event per ``buffered_flush_ms``.
    """

    p95_threshold_ms: float = 150.0
    window: int = 256
    min_samples: int = 16
    buffered_flush_ms: float = 50.0

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_samples < 1:
            raise ValueError(f"window and min_samples must be >= 1, got {self.window}, {self.min_samples}")
        if self.p95_threshold_ms < 0 or self.buffered_flush_ms < 0:
            raise ValueError("p95_threshold_ms and buffered_flush_ms must be >= 0")


@dataclass(frozen=True)
class LatencyStats:
    """Nearest-rank percentiles of the latencies in the window, in milliseconds; all 0 without samples."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    samples: int


@dataclass(frozen=True)
class GuardSwitch:
    """The facts behind the switch to buffered delivery; ``at_monotonic`` is ``time.monotonic()`` then."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    samples: int
    threshold_ms: float
    at_monotonic: float


class LatencyWindow:
    """The most recent ``size`` delivery latencies."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1, got {size}")
        self._samples_ms: deque[float] = deque(maxlen=size)

    def record(self, latency_s: float) -> None:
        """Add one latency (seconds); the oldest falls out once the window is full."""
        self._samples_ms.append(latency_s * _MS_PER_S)

    def __len__(self) -> int:
        return len(self._samples_ms)

    def percentiles(self) -> LatencyStats:
        """P50/P95/P99 of the window (nearest rank: the smallest sample with at least p% at or below it)."""
        ordered = sorted(self._samples_ms)
        if not ordered:
            return LatencyStats(p50_ms=0.0, p95_ms=0.0, p99_ms=0.0, samples=0)
        return LatencyStats(
            p50_ms=_nearest_rank(ordered, 50),
            p95_ms=_nearest_rank(ordered, 95),
            p99_ms=_nearest_rank(ordered, 99),
            samples=len(ordered),
        )


class StreamingGuard:
    """Starts in ``streaming`` mode and switches to ``buffered`` for good once P95 latency is too high."""

    def __init__(self, config: GuardConfig | None = None) -> None:
        self.config = config if config is not None else GuardConfig()
        self._window = LatencyWindow(self.config.window)
        self._switch: GuardSwitch | None = None

    @property
    def mode(self) -> DeliveryMode:
        return "streaming" if self._switch is None else "buffered"

    @property
    def switch(self) -> GuardSwitch | None:
        """The switch to buffered mode, once it happened."""
        return self._switch

    def latency(self) -> LatencyStats:
        """Percentiles over the current window."""
        return self._window.percentiles()

    def observe(self, latency_s: float, *, now: float | None = None) -> GuardSwitch | None:
        """Record one delivery latency; returns the switch the one time it happens, else None.

        ``now`` stamps the switch (default ``time.monotonic()``).
        """
        self._window.record(latency_s)
        # After the switch the window keeps recording for latency(), but nothing more is decided.
        if self._switch is not None or len(self._window) < self.config.min_samples:
            return None
        stats = self._window.percentiles()
        if stats.p95_ms <= self.config.p95_threshold_ms:
            return None
        self._switch = GuardSwitch(
            p50_ms=stats.p50_ms,
            p95_ms=stats.p95_ms,
            p99_ms=stats.p99_ms,
            samples=stats.samples,
            threshold_ms=self.config.p95_threshold_ms,
            at_monotonic=time.monotonic() if now is None else now,
        )
        return self._switch


def _nearest_rank(ordered: list[float], percent: int) -> float:
    # Integer ceil(percent% of n): float arithmetic would put e.g. 0.95 * 60 one rank off.
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]
