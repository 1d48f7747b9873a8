"""The streaming guard: nearest-rank percentiles, the window, and the one-time switch to buffered delivery."""

from __future__ import annotations

import pytest

from codex_orchestrator.exec.guard import (
    GuardConfig,
    GuardSwitch,
    LatencyStats,
    LatencyWindow,
    StreamingGuard,
)

FAST_S = 0.001
SLOW_S = 1.0


def test_defaults() -> None:
    assert GuardConfig() == GuardConfig(
        p95_threshold_ms=150.0, window=256, min_samples=16, buffered_flush_ms=50.0
    )


def test_empty_window_reports_zeros() -> None:
    assert LatencyWindow(8).percentiles() == LatencyStats(p50_ms=0.0, p95_ms=0.0, p99_ms=0.0, samples=0)


def test_single_sample_is_every_percentile() -> None:
    window = LatencyWindow(8)
    window.record(0.25)
    assert window.percentiles() == LatencyStats(p50_ms=250.0, p95_ms=250.0, p99_ms=250.0, samples=1)


@pytest.mark.parametrize(
    ("count", "p50", "p95", "p99"),
    [(100, 50, 95, 99), (20, 10, 19, 20), (60, 30, 57, 60), (10, 5, 10, 10), (2, 1, 2, 2)],
)
def test_nearest_rank_percentiles(count: int, p50: int, p95: int, p99: int) -> None:
    window = LatencyWindow(count)
    for ms in reversed(range(1, count + 1)):  # order of arrival must not matter
        window.record(ms / 1000)
    stats = window.percentiles()
    assert (stats.p50_ms, stats.p95_ms, stats.p99_ms, stats.samples) == pytest.approx((p50, p95, p99, count))


def test_window_forgets_the_oldest_samples() -> None:
    window = LatencyWindow(4)
    for latency_s in (SLOW_S,) * 4 + (FAST_S,) * 4:
        window.record(latency_s)
    assert len(window) == 4
    assert window.percentiles().p99_ms == pytest.approx(FAST_S * 1000)


def test_invalid_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="window size"):
        LatencyWindow(0)
    with pytest.raises(ValueError, match="min_samples"):
        GuardConfig(min_samples=0)
    with pytest.raises(ValueError, match="p95_threshold_ms"):
        GuardConfig(p95_threshold_ms=-1)


def test_guard_waits_for_min_samples() -> None:
    guard = StreamingGuard(GuardConfig(p95_threshold_ms=10, window=8, min_samples=4))
    assert [guard.observe(SLOW_S) for _ in range(3)] == [None, None, None]
    mode_before = guard.mode
    switch = guard.observe(SLOW_S, now=123.0)
    assert switch == GuardSwitch(
        p50_ms=1000.0, p95_ms=1000.0, p99_ms=1000.0, samples=4, threshold_ms=10, at_monotonic=123.0
    )
    assert (mode_before, guard.mode) == ("streaming", "buffered")
    assert guard.switch is switch


def test_guard_switches_exactly_once() -> None:
    guard = StreamingGuard(GuardConfig(p95_threshold_ms=10, window=8, min_samples=1))
    switches = [guard.observe(SLOW_S) for _ in range(20)]
    assert switches[0] is not None
    assert switches[1:] == [None] * 19
    assert guard.mode == "buffered"


def test_guard_stays_streaming_while_fast() -> None:
    guard = StreamingGuard(GuardConfig(p95_threshold_ms=10, window=8, min_samples=1))
    assert all(guard.observe(FAST_S) is None for _ in range(100))
    assert guard.mode == "streaming"
    assert guard.switch is None


def test_latency_equal_to_the_threshold_does_not_switch() -> None:
    guard = StreamingGuard(GuardConfig(p95_threshold_ms=250.0, window=4, min_samples=1))
    assert all(guard.observe(0.25) is None for _ in range(10))


def test_p95_crosses_with_the_second_slow_sample_in_twenty() -> None:
    # Nearest rank: P95 of 20 samples is the 19th smallest, so one slow sample is tolerated, two are not.
    guard = StreamingGuard(GuardConfig(p95_threshold_ms=100, window=20, min_samples=20))
    for _ in range(18):
        assert guard.observe(FAST_S) is None
    assert guard.observe(SLOW_S) is None  # 19 samples: below min_samples
    switch_at_20 = guard.observe(FAST_S)
    assert switch_at_20 is None  # 20 samples, one slow: P95 is fast
    switch = guard.observe(SLOW_S)  # window slides: 18 fast + 2 slow
    assert switch is not None
    assert (switch.p95_ms, switch.p50_ms, switch.samples) == pytest.approx((1000.0, 1.0, 20))


def test_old_slow_samples_slide_out_of_the_window() -> None:
    guard = StreamingGuard(GuardConfig(p95_threshold_ms=100, window=20, min_samples=20))
    guard.observe(SLOW_S)
    for _ in range(19):
        assert guard.observe(FAST_S) is None
    assert guard.latency().p99_ms == pytest.approx(1000.0)  # the slow one is still in the window
    assert guard.observe(FAST_S) is None
    assert guard.latency().p99_ms == pytest.approx(1.0)


def test_latency_keeps_recording_after_the_switch() -> None:
    guard = StreamingGuard(GuardConfig(p95_threshold_ms=10, window=4, min_samples=1))
    assert guard.observe(SLOW_S) is not None
    for _ in range(4):
        guard.observe(FAST_S)
    assert guard.latency().p99_ms == pytest.approx(1.0)
    assert guard.mode == "buffered"
