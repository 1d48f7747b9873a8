"""Fan-out: independent steps sequential vs ``max_parallel: 8``, and per-call overhead as a run grows.

Run from the repo root: ``.venv/bin/python bench/fanout.py [--quick]``. Each figure is a whole autonomy run on
Prefect's embedded server (SQLite), timed by its exec milestone as recorded in the manifest, so server start-up
is not counted. Targets: parallel speed-up >= 5x; per-call cost at 200 steps / at 10 steps <= 1.2.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import os

# Prefect's temporary server gets 20 s to start by default; on a loaded two-core machine that is not enough
# (the benchmark failed with "Timed out while attempting to connect to ephemeral Prefect API server").
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import itertools
import shutil
import statistics
import tempfile
from dataclasses import dataclass
from typing import Any

import yaml

from bench._common import BenchError, Target, emit_report, note, parser, print_table, ratio
from codex_orchestrator.clock import parse_utc
from codex_orchestrator.records.manifest import load_manifest

PARALLEL = 8
SLEEP_STEPS, QUICK_SLEEP_STEPS = 32, 8
SLEEP_S, QUICK_SLEEP_S = 0.25, 0.1
SIZES, QUICK_SIZES = (10, 200), (4, 16)
ROUNDS = 2
SPEEDUP_TARGET = 5.0
GROWTH_TARGET = 1.2


@dataclass(frozen=True)
class Timed:
    steps: int
    max_parallel: int
    exec_s: float
    gaps_ms: tuple[float, ...]  # between the starts of consecutive calls (sequential runs)

    @property
    def per_call_ms(self) -> float:
        """The median time from one call's start to the next one's: robust to a burst of load elsewhere."""
        return statistics.median(self.gaps_ms) if self.gaps_ms else self.exec_s * 1000 / self.steps


def _median(runs: list[Timed]) -> float:
    return statistics.median(t.per_call_ms for t in runs)


def timed_run(root: Path, name: str, steps: list[dict[str, Any]], max_parallel: int) -> Timed:
    """One autonomy run in this process; returns its exec milestone's recorded duration."""
    from flows.runner import run_request

    workspace = root / name
    workspace.mkdir(parents=True)
    request = {
        "task": "bench-fanout",
        "workspace": str(workspace),
        "profile": ["read", "edit", "run"],
        "sandbox": "workspace-write",
        "max_parallel": max_parallel,
        "steps": steps,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(request), encoding="utf-8")
    code, manifest_path = run_request(path, run_id=name, say=lambda _text: None)
    manifest = load_manifest(manifest_path)
    if code != 0:
        raise BenchError(f"run {name} ended {manifest.status}: {manifest.error}")
    milestone = next(m for m in manifest.milestones if m.name == "exec")
    if not (milestone.started_at and milestone.finished_at):
        raise BenchError(f"run {name} recorded no exec milestone times")
    seconds = (parse_utc(milestone.finished_at) - parse_utc(milestone.started_at)).total_seconds()
    starts = sorted(parse_utc(c.started_at).timestamp() for c in manifest.tool_calls if c.started_at)
    gaps = tuple((b - a) * 1000 for a, b in itertools.pairwise(starts))
    return Timed(steps=len(steps), max_parallel=max_parallel, exec_s=seconds, gaps_ms=gaps)


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0] if __doc__ else "fan-out")
    options = args.parse_args(argv)
    count = QUICK_SLEEP_STEPS if options.quick else SLEEP_STEPS
    sleep_s = QUICK_SLEEP_S if options.quick else SLEEP_S
    sizes = QUICK_SIZES if options.quick else SIZES
    sleeps = [{"name": f"sleep-{i}", "command": f"sleep {sleep_s}"} for i in range(count)]
    scratch = Path(tempfile.mkdtemp(prefix="codex-bench-fanout-"))
    try:
        note(
            "warm-up run (untimed): the first run in a process pays for imports and the server's first queries"
        )
        timed_run(scratch, "warm-up", sleeps[:PARALLEL], PARALLEL)
        note(f"{count} independent `sleep {sleep_s}` steps, max_parallel 1 ...")
        sequential = timed_run(scratch, "sequential", sleeps, 1)
        note(f"... and max_parallel {PARALLEL} ...")
        parallel = timed_run(scratch, "parallel", sleeps, PARALLEL)
        rounds: dict[int, list[Timed]] = {size: [] for size in sizes}
        for round_no in range(ROUNDS):
            for size in sizes:  # interleaved, so load elsewhere falls on both sizes alike
                note(f"{size} sequential `true` steps (round {round_no + 1}/{ROUNDS}) ...")
                steps = [{"name": f"true-{i}", "command": "true"} for i in range(size)]
                rounds[size].append(timed_run(scratch, f"size-{size}-{round_no}", steps, 1))
        grown = [min(runs, key=lambda t: abs(t.per_call_ms - _median(runs))) for runs in rounds.values()]
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print_table(
        f"{count} independent `sleep {sleep_s}` steps (exec milestone, s)",
        ["max_parallel", "seconds", "speed-up"],
        [[1, sequential.exec_s, 1.0], [PARALLEL, parallel.exec_s, ratio(sequential.exec_s, parallel.exec_s)]],
    )
    print_table(
        f"Per-call overhead as the run grows (sequential `true` steps; median start-to-start, of {ROUNDS} rounds)",
        ["steps", "exec s", "ms per call"],
        [[t.steps, t.exec_s, t.per_call_ms] for t in grown],
    )
    targets = {
        f"speed-up, max_parallel {PARALLEL} vs 1": Target(
            ratio(sequential.exec_s, parallel.exec_s), SPEEDUP_TARGET, at_least=True
        ),
        f"per-call cost, {sizes[1]} steps / {sizes[0]} steps": Target(
            ratio(grown[1].per_call_ms, grown[0].per_call_ms), GROWTH_TARGET
        ),
    }
    results = {
        "sequential_s": sequential.exec_s,
        "parallel_s": parallel.exec_s,
        "per_call_ms": {str(t.steps): round(t.per_call_ms, 3) for t in grown},
    }
    emit_report("fanout", results, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
