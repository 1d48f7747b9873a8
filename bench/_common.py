"""What both benchmark scripts share: timing, nearest-rank percentiles, targets, the human table and the JSON line.

Every figure a script reports is compared with a baseline measured in the same run (``Target``), because the
machines these run on are small and shared: absolute numbers drift from run to run, ratios much less.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import select
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

NS_PER_MS = 1_000_000
NS_PER_US = 1_000
NS_PER_S = 1_000_000_000
BYTES_PER_MIB = 1024 * 1024
# CPython's collector has generations 0-2; a collection of generation 2 traverses every tracked object.
_OLDEST_GC_GENERATION = 2


class BenchError(Exception):
    """A benchmark could not measure what it claims to (a call failed, a server did not start); says which."""


def percentile(samples: Sequence[float], percent: float) -> float:
    """Nearest rank: the smallest sample with at least ``percent``% of all samples at or below it."""
    if not samples:
        raise ValueError("percentile of no samples")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), -int(-percent * len(ordered) // 100)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Stats:
    """Median and tail of a set of samples (all in one unit, usually ms)."""

    n: int
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        return cls(
            n=len(samples),
            p50=percentile(samples, 50),
            p95=percentile(samples, 95),
            p99=percentile(samples, 99),
        )

    def as_dict(self, unit: str = "ms") -> dict[str, float | int]:
        return {
            "n": self.n,
            f"p50_{unit}": round(self.p50, 4),
            f"p95_{unit}": round(self.p95, 4),
            f"p99_{unit}": round(self.p99, 4),
        }


def time_call_ms(call: Callable[[], object]) -> float:
    """Wall time of one call, in milliseconds."""
    started = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - started) / NS_PER_MS


def interleaved_ms(calls: Mapping[str, Callable[[], object]], n: int, warmup: int) -> dict[str, list[float]]:
    """Time each call ``n`` times (after ``warmup`` untimed rounds), one of each per round in a rotating order.

    Interleaving spreads the machine's noise (another tenant, a background flush) over every variant alike,
    so their ratios stay meaningful even when the absolute figures drift during the run.
    """
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(warmup + n):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = time_call_ms(calls[name])
            if round_no >= warmup:
                samples[name].append(elapsed)
    return samples


# Receives each chunk of a child's output with its arrival time (time.monotonic_ns()).
Sink = Callable[[bytes, int], None]
READ_CHUNK_BYTES = 65536


def run_in_raw_pty(
    argv: Sequence[str],
    sink: Sink,
    timeout_s: float,
    *,
    new_session: bool = True,
    preexec_fn: Callable[[], None] | None = None,
) -> int:
    """The floor for PTY output: ``argv`` on a fresh PTY (its own session unless ``new_session`` is off), the
    parent in a select + os.read loop. Returns the exit code; raises ``BenchError`` after ``timeout_s`` of quiet.
    """
    return run_in_raw_ptys([argv], [sink], timeout_s, new_session=new_session, preexec_fn=preexec_fn)[0]


def run_in_raw_ptys(
    argvs: Sequence[Sequence[str]],
    sinks: Sequence[Sink],
    timeout_s: float,
    *,
    new_session: bool = True,
    preexec_fn: Callable[[], None] | None = None,
) -> list[int]:
    """Each argv on a PTY of its own, one parent thread reading them all in a select + os.read loop; each
    chunk goes to the sink of its child. Returns the exit codes in order."""
    sink_of: dict[int, Sink] = {}
    children: list[subprocess.Popen[bytes]] = []
    try:
        for argv, sink in zip(argvs, sinks, strict=True):
            master, slave = os.openpty()
            sink_of[master] = sink
            try:
                children.append(
                    subprocess.Popen(
                        argv,
                        stdin=slave,
                        stdout=slave,
                        stderr=slave,
                        start_new_session=new_session,
                        preexec_fn=preexec_fn,
                    )
                )
            finally:
                os.close(slave)  # only the child holds the slave: its exit ends our reads with EIO
        _read_until_eof(sink_of, timeout_s)
    finally:
        for master in sink_of:
            os.close(master)
    return [child.wait(timeout_s) for child in children]


def _read_until_eof(sink_of: Mapping[int, Sink], timeout_s: float) -> None:
    pending = set(sink_of)
    while pending:
        ready, _, _ = select.select(list(pending), [], [], timeout_s)
        if not ready:
            raise BenchError(f"{len(pending)} raw PTY children went quiet for {timeout_s}s")
        for master in ready:
            try:
                data = os.read(master, READ_CHUNK_BYTES)
            except OSError:  # EIO: every slave end is closed
                data = b""
            if data:
                sink_of[master](data, time.monotonic_ns())
            else:
                pending.discard(master)


class GcWatch:
    """While active, counts CPython's full (generation 2) collections and the time spent in all collections."""

    def __init__(self) -> None:
        self.full_collections = 0
        self.elapsed_ns = 0
        self._started_ns = 0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started_ns = time.perf_counter_ns()
            return
        self.elapsed_ns += time.perf_counter_ns() - self._started_ns
        if info["generation"] == _OLDEST_GC_GENERATION:
            self.full_collections += 1

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._callback)


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline > 0 else float("inf")


@dataclass(frozen=True)
class Target:
    """``ratio`` against a same-run baseline, met when at most (or, with ``at_least``, at least) ``target``.

    ``spread``: the interquartile range of the per-round ratios the median ``ratio`` came from (or their
    range, with few rounds); ``unit`` names what a ratio-less figure is in (``s``)."""

    ratio: float
    target: float
    at_least: bool = False
    spread: tuple[float, float] | None = None
    rounds: int = 0
    unit: str = ""

    @property
    def met(self) -> bool:
        return self.ratio >= self.target if self.at_least else self.ratio <= self.target

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ratio": round(self.ratio, 4), "target": self.target, "met": self.met}
        if self.spread is not None:
            out["spread"] = [round(self.spread[0], 4), round(self.spread[1], 4)]
            out["rounds"] = self.rounds
        if self.unit:
            out["unit"] = self.unit
        return out


# Fewer rounds than this: the spread is the whole range, not the interquartile one.
_IQR_MIN_ROUNDS = 8


def paired_target(
    values: Sequence[float], baselines: Sequence[float], target: float, *, at_least: bool = False
) -> Target:
    """The median of the per-round ratios ``values[i] / baselines[i]`` (rounds interleave both sides, so
    each pair saw the same machine), with their spread."""
    ratios = [ratio(v, b) for v, b in zip(values, baselines, strict=True)]
    return spread_target(ratios, target, at_least=at_least)


def spread_target(
    samples: Sequence[float], target: float, *, at_least: bool = False, unit: str = ""
) -> Target:
    """The median of ``samples`` (ratios, or a figure in ``unit``) against ``target``, with their spread."""
    low, high = (25, 75) if len(samples) >= _IQR_MIN_ROUNDS else (0, 100)
    spread = (percentile(samples, low) if low else min(samples), percentile(samples, high))
    return Target(
        percentile(samples, 50), target, at_least=at_least, spread=spread, rounds=len(samples), unit=unit
    )


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned table on stdout: the first column left-aligned, the others right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = [values[0].ljust(widths[0])]
        padded += [value.rjust(width) for value, width in zip(values[1:], widths[1:], strict=True)]
        return "  ".join(padded).rstrip()

    print(f"\n{title}")
    print(line(list(headers)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))


def print_targets(targets: Mapping[str, Target]) -> None:
    rows = [
        [
            name,
            t.ratio,
            f"{'>=' if t.at_least else '<='} {t.target}{t.unit}",
            f"{_cell(t.spread[0])}-{_cell(t.spread[1])} ({t.rounds} rounds)" if t.spread else "",
            "met" if t.met else "MISSED",
        ]
        for name, t in targets.items()
    ]
    print_table(
        "Targets (medians of ratios against baselines measured in this run; spread: IQR or range)",
        ["target", "median", "goal", "spread", ""],
        rows,
    )


def machine() -> dict[str, Any]:
    """Where and when the figures were taken."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def emit_report(bench: str, results: Mapping[str, Any], targets: Mapping[str, Target]) -> None:
    """The targets table, then the machine-readable summary as the very last line of stdout."""
    print_targets(targets)
    report = {
        "bench": bench,
        "machine": machine(),
        "results": results,
        "targets": {name: t.as_dict() for name, t in targets.items()},
    }
    print(json.dumps(report, separators=(",", ":")), flush=True)


def parser(description: str) -> argparse.ArgumentParser:
    """The shared command line: ``--quick`` for a smoke-sized run (tests, CI); scripts add their own options."""
    args = argparse.ArgumentParser(description=description)
    args.add_argument(
        "--quick", action="store_true", help="tiny sizes: checks the script works, the figures mean little"
    )
    return args


def note(text: str) -> None:
    """Progress for the person watching, on stderr so stdout stays the table and the JSON line."""
    print(text, file=sys.stderr, flush=True)
