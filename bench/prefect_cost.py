"""What a tool call costs Prefect, like for like: CPU-seconds per call of every process (server, database, flow,
task workers) for our tool-call task and for a bare Prefect task running the same command, with Prefect's
default server settings and with the product's tuned ones (flows/server_tuning.py).

Run from the repo root: ``.venv/bin/python bench/prefect_cost.py [--quick] [--calls N]`` (PostgreSQL needs
Debian's postgresql; a private server is started). For each database (SQLite, PostgreSQL) and each server
setting, one ``prefect server start``; on it, for each runner (the flow's threads; task workers), ours (a
``codex-orchestrator run`` of N `sleep 0.01` steps, sandbox none, no approval) and bare (bench/bare_prefect.py:
``@task`` + ``subprocess.run``, ``.submit`` / ``.delay``) run N calls and 1 call; a call's CPU is the difference
over N - 1, so start-up (imports, the other milestones, the first call) is taken off. CPU is read from
/proc (utime + stime of each process and its reaped children), which a loaded machine disturbs less than wall
time. Targets: ours / bare <= 1.3 in total for each runner; server CPU per tool call tuned / defaults <= 0.5.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import yaml

from bench._common import BenchError, Target, emit_report, note, parser, print_table, ratio
from bench.scale_out import CLI, role_cpu_s, server, start_worker, stop_worker
from flows.server_tuning import tuned_server_settings
from tests.deploy.postgres import Postgres, missing_reason, postgres_server
from tests.deploy.stack import Stack

CALLS, QUICK_CALLS = 80, 4
PARALLEL = 8  # the flow's threads, and each task worker's --limit
COMMAND = ["sleep", "0.01"]
RUNNERS = ("thread", "task-workers")
VARIANTS = ("ours", "bare")
BARE = Path(__file__).resolve().parent / "bare_prefect.py"
RUN_TIMEOUT_S = 600.0
# After a run, before its CPU is read: longer than Prefect's default flush interval (5 s), so that the server's
# batched writes of the run's task runs and events land in the run's figure.
SETTLE_S = 7.0
# How long the idle topology is watched for its background CPU (the server's loops, the idle workers' and the
# database's), which is taken off each run in proportion to its length: ours runs longer than bare.
IDLE_S, QUICK_IDLE_S = 20.0, 3.0
TOTAL_TARGET = 1.3
SERVER_TARGET = 0.5
ROLES = ("server", "database", "flow", "workers")
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sample:
    """What one run cost: CPU seconds by role (the idle topology's background taken off), and what it left in
    the API (events by type, log lines)."""

    cpu_s: dict[str, float]
    events: dict[str, int]
    logs: int


def _now() -> str:
    return datetime.now(UTC).isoformat()


def api_counts(stack: Stack, since: str) -> tuple[dict[str, int], int]:
    """Events by type and log lines the API holds from ``since`` on."""
    with httpx.Client(base_url=stack.api_url, timeout=60) as client:
        body = {"filter": {"occurred": {"since": since, "until": _now()}}}
        response = client.post("/events/count-by/event", json=body)
        response.raise_for_status()
        events = {str(row["value"]): int(row["count"]) for row in response.json()}
        logs, offset = 0, 0
        while True:
            page = client.post(
                "/logs/filter",
                json={"logs": {"timestamp": {"after_": since}}, "limit": 200, "offset": offset},
            )
            page.raise_for_status()
            rows = page.json()
            logs += len(rows)
            offset += len(rows)
            if len(rows) < 200:
                return events, logs


def ours_argv(root: Path, name: str, runner: str, calls: int) -> list[str]:
    workspace = root / name
    workspace.mkdir(parents=True)
    request = {
        "task": "bench-prefect-cost",
        "workspace": str(workspace),
        "profile": ["read", "edit", "run"],
        "sandbox": "none",
        "max_parallel": PARALLEL,
        "runner": {"kind": runner},
        "steps": [{"name": f"sleep-{i}", "command": " ".join(COMMAND)} for i in range(calls)],
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(request), encoding="utf-8")
    return [str(CLI), "run", str(path), "--run-id", name]


def bare_argv(runner: str, calls: int) -> list[str]:
    return [
        sys.executable,
        str(BARE),
        "flow",
        "--calls",
        str(calls),
        "--runner",
        runner,
        "--parallel",
        str(PARALLEL),
        "--",
        *COMMAND,
    ]


Rates = dict[str, float]  # CPU seconds per second, by process (role_cpu_s's names)


def idle_rates(stack: Stack, seconds: float) -> Rates:
    """The background CPU of the idle topology, by process."""
    before, started = role_cpu_s(stack), time.monotonic()
    time.sleep(seconds)
    after, elapsed = role_cpu_s(stack), time.monotonic() - started
    return {role: max(0.0, after[role] - before.get(role, 0.0)) / elapsed for role in after}


def measure(stack: Stack, argv: list[str], worker: str, name: str, idle: Rates) -> Sample:
    """Run ``argv`` (a flow, in a child of this process) to its end, let the server settle, and take what every
    process used meanwhile beyond its ``idle`` background. ``worker`` names the task worker of this variant;
    the other's idles."""
    since, started = _now(), time.monotonic()
    before = role_cpu_s(stack)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The flow and its tasks log at Prefect's default level (INFO), as a user's do: what goes to the API is
    # part of the cost (the bench's server and workers keep the quieter level they were started with).
    env = {k: v for k, v in stack.env.items() if k != "PREFECT_LOGGING_LEVEL"}
    try:
        done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"run {name} hung: not finished after {RUN_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        raise BenchError(f"run {name} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    time.sleep(SETTLE_S)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after, elapsed = role_cpu_s(stack), time.monotonic() - started
    cpu = {
        role: after.get(role, 0.0) - before.get(role, 0.0) - idle.get(role, 0.0) * elapsed for role in after
    }
    cpu_s = {
        "server": cpu.get("server", 0.0),
        "database": cpu.get("database", 0.0),
        "flow": (children_after.ru_utime + children_after.ru_stime)
        - (children_before.ru_utime + children_before.ru_stime),
        "workers": cpu.get(worker, 0.0),
    }
    events, logs = api_counts(stack, since)
    note(
        "    CPU s: "
        + ", ".join(f"{k} {v:.2f}" for k, v in cpu_s.items())
        + f"; {sum(events.values())} events"
    )
    return Sample(cpu_s, events, logs)


@dataclass(frozen=True)
class PerCall:
    """One variant's cost per call beyond a run's first, on one server and runner."""

    cpu_ms: dict[str, float]
    events: dict[str, float]
    logs: float

    @property
    def total_ms(self) -> float:
        return sum(self.cpu_ms.values())


def per_call(full: Sample, single: Sample, calls: int) -> PerCall:
    extra = calls - 1
    return PerCall(
        cpu_ms={r: max(0.0, full.cpu_s[r] - single.cpu_s[r]) * 1000 / extra for r in ROLES},
        events={
            k: (full.events.get(k, 0) - single.events.get(k, 0)) / extra
            for k in sorted(set(full.events) | set(single.events))
        },
        logs=(full.logs - single.logs) / extra,
    )


def run_pair(
    stack: Stack, root: Path, label: str, runner: str, variant: str, calls: int, idle: Rates
) -> PerCall:
    worker = f"worker-{variant}"
    samples = []
    for size in (1, calls):
        name = f"{label}-{runner}-{variant}-{size}"
        argv = ours_argv(root, name, runner, size) if variant == "ours" else bare_argv(runner, size)
        note(f"  {name} ...")
        samples.append(measure(stack, argv, worker, name, idle))
    return per_call(samples[1], samples[0], calls)


@contextmanager
def topology(root: Path, pg: Postgres | None, settings: Mapping[str, str]) -> Iterator[Stack]:
    """A server with ``settings``, a task worker of ours and a bare one (each idles while the other works)."""
    with server(root, pg, settings) as stack:
        start_worker(stack, "worker-ours", PARALLEL)
        start_worker(
            stack, "worker-bare", PARALLEL, [sys.executable, str(BARE), "worker", "--limit", str(PARALLEL)]
        )
        try:
            yield stack
        finally:
            stop_worker(stack, "worker-bare")
            stop_worker(stack, "worker-ours")


Results = dict[str, dict[str, dict[str, dict[str, PerCall]]]]  # database -> settings -> runner -> variant


def measure_all(
    scratch: Path, calls: int, databases: list[str], runners: list[str], idle_s: float
) -> Results:
    settings_of = {"defaults": {}, "tuned": tuned_server_settings()}
    results: Results = {}
    for database in databases:
        results[database] = {}
        for label, settings in settings_of.items():
            note(f"{database}, server settings {label}:")
            home = scratch / f"{database}-{label}"
            with _database(database) as pg, topology(home, pg, settings) as stack:
                # A warm-up of each first: the first run on a fresh server creates its flows and blocks.
                measure(stack, ours_argv(home, "warm-up", runners[0], 2), "worker-ours", "warm-up", {})
                measure(stack, bare_argv(runners[0], 2), "worker-bare", "warm-up", {})
                idle = idle_rates(stack, idle_s)
                note("  idle CPU s per s: " + ", ".join(f"{k} {v:.3f}" for k, v in idle.items()))
                results[database][label] = {
                    runner: {v: run_pair(stack, home, label, runner, v, calls, idle) for v in VARIANTS}
                    for runner in runners
                }
    return results


@contextmanager
def _database(database: str) -> Iterator[Postgres | None]:
    if database == "sqlite":
        yield None
        return
    with postgres_server() as pg:
        yield pg


def print_results(results: Results) -> dict[str, Target]:
    targets: dict[str, Target] = {}
    for database, by_settings in results.items():
        for label, by_runner in by_settings.items():
            for runner, by_variant in by_runner.items():
                ours, bare = by_variant["ours"], by_variant["bare"]
                rows: list[list[object]] = [
                    [r, ours.cpu_ms[r], bare.cpu_ms[r], ratio(ours.cpu_ms[r], bare.cpu_ms[r])] for r in ROLES
                ]
                rows.append(["total", ours.total_ms, bare.total_ms, ratio(ours.total_ms, bare.total_ms)])
                print_table(
                    f"{database}, server {label}, runner {runner}: CPU ms per call",
                    ["process", "ours", "bare", "ours / bare"],
                    rows,
                )
                kinds = sorted(  # what a call adds (a run's own events cancel out)
                    k for k in set(ours.events) | set(bare.events) if ours.events.get(k) or bare.events.get(k)
                )
                print_table(
                    f"{database}, server {label}, runner {runner}: what a call leaves in the API",
                    ["per call", "ours", "bare"],
                    [[k, ours.events.get(k, 0.0), bare.events.get(k, 0.0)] for k in kinds]
                    + [["log lines", ours.logs, bare.logs]],
                )
                if label == "tuned":
                    targets[f"{database} {runner}: total CPU per call, ours / bare"] = Target(
                        ratio(ours.total_ms, bare.total_ms), TOTAL_TARGET
                    )
        if {"defaults", "tuned"} <= set(by_settings):
            for runner in set(by_settings["defaults"]) & set(by_settings["tuned"]):
                before = by_settings["defaults"][runner]["ours"].cpu_ms["server"]
                after = by_settings["tuned"][runner]["ours"].cpu_ms["server"]
                targets[f"{database} {runner}: server CPU per tool call, tuned / defaults"] = Target(
                    ratio(after, before), SERVER_TARGET
                )
    return targets


def as_json(results: Results) -> dict[str, Any]:
    return {
        database: {
            label: {
                runner: {
                    variant: {
                        "cpu_ms": {k: round(v, 1) for k, v in p.cpu_ms.items()},
                        "events": {k: round(v, 2) for k, v in p.events.items()},
                        "logs": round(p.logs, 2),
                    }
                    for variant, p in by_variant.items()
                }
                for runner, by_variant in by_runner.items()
            }
            for label, by_runner in by_settings.items()
        }
        for database, by_settings in results.items()
    }


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0] if __doc__ else "prefect-cost")
    args.add_argument(
        "--calls", type=int, help=f"calls per measured run (default {CALLS}; --quick {QUICK_CALLS})"
    )
    args.add_argument(
        "--database", choices=["sqlite", "postgresql"], action="append", help="only these (default: both)"
    )
    args.add_argument("--runner", choices=RUNNERS, action="append", help="only these (default: both)")
    options = args.parse_args(argv)
    calls = options.calls or (QUICK_CALLS if options.quick else CALLS)
    if calls < 2:
        args.error("--calls needs at least 2 (a call's cost is taken over the calls beyond a run's first)")
    databases = options.database or ["sqlite", "postgresql"]
    runners = options.runner or list(RUNNERS)
    reason = missing_reason() if "postgresql" in databases else None
    if reason:
        print(f"benchmark skipped: {reason}", file=sys.stderr)
        return 1
    # A SIGTERM ends the script through its finally blocks, which stop the servers and workers it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    scratch = Path(tempfile.mkdtemp(prefix="codex-bench-cost-"))
    try:
        results = measure_all(scratch, calls, databases, runners, QUICK_IDLE_S if options.quick else IDLE_S)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    targets = print_results(results)
    emit_report("prefect_cost", {"calls": calls, "per_call": as_json(results)}, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
