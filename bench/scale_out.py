"""Scale-out: 64 `sleep 0.5` calls on 1 vs 2 Prefect task workers (PostgreSQL server), and the per-call
scheduling overhead on PostgreSQL vs SQLite.

Run from the repo root: ``.venv/bin/python bench/scale_out.py [--quick] [--soak N]`` (needs Debian's postgresql;
a private server is started). Each figure is a whole autonomy run started with ``codex-orchestrator run`` against a
``prefect server start``, its calls on task workers (``runner: task-workers``), timed by its exec milestone as
recorded in the manifest. Targets: 2 workers vs 1 >= 1.8x; per-call overhead PostgreSQL / SQLite <= 1.5.

``--soak N`` measures nothing: it runs the task-worker fan-out N times in a row on one worker and fails on the
first run that does not finish within ``SOAK_RUN_TIMEOUT_S`` (a hang: issue 20's deadlock ended every run's
first call before its callback was registered).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import yaml

from bench._common import BenchError, Target, emit_report, note, parser, print_table, ratio
from codex_orchestrator.clock import parse_utc
from codex_orchestrator.records.manifest import load_manifest
from flows.server_tuning import tuned_server_settings
from tests.deploy.postgres import Postgres, missing_reason, postgres_server
from tests.deploy.stack import Stack, free_port

CALLS, QUICK_CALLS = 64, 8
SLEEP_S, QUICK_SLEEP_S = 0.5, 0.1
WORKER_LIMIT, QUICK_WORKER_LIMIT = 8, 2  # calls at once per task worker: the capacity that scale-out adds
# A second, worker-bound configuration: so few slots per worker that the workers, not the machine's CPU, are
# the limit; it shows what a second worker adds when there is CPU to spare (one round).
NARROW_LIMIT = 2
OVERHEAD_CALLS, QUICK_OVERHEAD_CALLS = 40, 6
ROUNDS, QUICK_ROUNDS = 2, 1
SCALE_TARGET = 1.8
OVERHEAD_TARGET = 1.5
# A second worker must not make a call cost the topology more CPU: calls per CPU-second with 2 workers vs 1, at
# least this (1.0 less the rounds' noise on a shared machine).
PER_CPU_TARGET = 0.9
WORKER_READY_S = 120.0
RUN_TIMEOUT_S = 600.0
# The soak: a fan-out of this many independent `true` calls (the reproduction) per run, and how long one
# may take before it counts as hung (a run of them takes seconds on a loaded 2-core machine).
SOAK_CALLS = 24
SOAK_RUN_TIMEOUT_S = 180.0
CLI = Path(sys.executable).parent / "codex-orchestrator"
PREFECT = Path(sys.executable).parent / "prefect"


@dataclass(frozen=True)
class Timed:
    exec_s: float
    gaps_ms: tuple[float, ...]
    cpu_busy: float  # share of the machine's CPU time busy while the run ran (0..1, every core)
    cpu_s: dict[
        str, float
    ]  # CPU seconds spent during the run, by role (server, database, flow, workers, other)
    calls: int

    @property
    def per_call_ms(self) -> float:
        return statistics.median(self.gaps_ms) if self.gaps_ms else float("nan")


@contextmanager
def server(home: Path, pg: Postgres | None, settings: Mapping[str, str] | None = None) -> Iterator[Stack]:
    """``prefect server start`` (on ``pg``, else SQLite under ``home``), with the Prefect ``settings`` given
    (environment variables; the product's tuned ones unless told otherwise)."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    env.update(tuned_server_settings() if settings is None else settings)
    if pg is not None:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = pg.url
    stack = Stack(home=home, env=env, port=port, database_pid=pg.postmaster_pid if pg else None)
    try:
        stack.run_line(f"{PREFECT} server start &", cwd=home, name="server")
        stack.wait_healthy()
        stack.env["PREFECT_API_URL"] = stack.api_url
        yield stack
    finally:
        stack.stop()


def start_worker(stack: Stack, name: str, limit: int, command: Sequence[str] = ()) -> None:
    """A task worker of ours (or ``command``: another one, e.g. a bare Prefect one) in the background, once it
    has subscribed to the server."""
    line = shlex.join(command) if command else f"{CLI} task-worker --limit {limit}"
    stack.env["PREFECT_LOGGING_LEVEL"] = "INFO"  # the worker says when it has subscribed
    stack.run_line(f"{line} &", cwd=stack.home, name=name)
    stack.env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    log = stack.home / f"{name}.log"
    deadline = time.monotonic() + WORKER_READY_S
    while "Subscribing to runs" not in log.read_text(errors="replace"):
        if time.monotonic() > deadline or stack.processes[name].poll() is not None:
            raise BenchError(f"task worker {name} did not start: {log.read_text(errors='replace')[-500:]}")
        time.sleep(0.1)


def stop_worker(stack: Stack, name: str) -> None:
    process = stack.processes.pop(name)
    process.terminate()
    process.wait(60)


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat: iowait and idle count as not busy."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session ...


def role_cpu_s(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each long-lived part of the topology: the Prefect server, PostgreSQL and
    each task worker, each with its exited children (every process started by Stack leads its own session;
    PostgreSQL's backends are children of its postmaster; other PostgreSQL servers on the machine, the other
    engineers', are not counted)."""
    sessions = {process.pid: name for name, process in stack.processes.items()}
    postmaster = str(stack.database_pid) if stack.database_pid is not None else None
    seconds: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        role = sessions.get(int(fields[3]))
        if role is None and postmaster is not None and postmaster in (pid, fields[1]):
            role = "database"
        if role is not None:
            # utime stime cutime cstime: fields 14-17 of stat, here 11-14 (counted from 0 after comm)
            ticks = sum(int(v) for v in fields[11:15])
            seconds[role] = seconds.get(role, 0.0) + ticks * TICK_S
    return seconds


def timed_run(
    stack: Stack,
    root: Path,
    name: str,
    steps: list[dict[str, Any]],
    max_parallel: int,
    timeout_s: float = RUN_TIMEOUT_S,
) -> Timed:
    workspace = root / name
    workspace.mkdir(parents=True)
    request = {
        "task": "bench-scale-out",
        "workspace": str(workspace),
        "profile": ["read", "edit", "run"],
        "sandbox": "none",
        "max_parallel": max_parallel,
        "runner": {"kind": "task-workers"},
        "steps": steps,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(request), encoding="utf-8")
    busy_before, total_before = cpu_times()
    roles_before = role_cpu_s(stack)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(
            [str(CLI), "run", str(path), "--run-id", name],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"run {name} hung: not finished after {timeout_s:.0f} s (killed)") from exc
    busy_after, total_after = cpu_times()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    roles_after = role_cpu_s(stack)
    cpu_busy = (busy_after - busy_before) / max(1, total_after - total_before)
    cpu_s = {role: roles_after[role] - roles_before.get(role, 0.0) for role in roles_after}
    # The run's own process (the CLI and its flows) is the one child of this script reaped during the run.
    cpu_s["flow (run process)"] = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    cpu_s["rest of the machine"] = max(0.0, (busy_after - busy_before) * TICK_S - sum(cpu_s.values()))
    manifest_path = workspace / ".runs/bench-scale-out/cli" / name / "manifest.json"
    if done.returncode != 0 or not manifest_path.exists():
        raise BenchError(f"run {name} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    manifest = load_manifest(manifest_path)
    milestone = next(m for m in manifest.milestones if m.name == "exec")
    if not (milestone.started_at and milestone.finished_at):
        raise BenchError(f"run {name} recorded no exec milestone times")
    seconds = (parse_utc(milestone.finished_at) - parse_utc(milestone.started_at)).total_seconds()
    starts = sorted(parse_utc(c.started_at).timestamp() for c in manifest.tool_calls if c.started_at)
    gaps = tuple((b - a) * 1000 for a, b in itertools.pairwise(starts))
    return Timed(seconds, gaps, cpu_busy, cpu_s, len(steps))


def marginal_cpu_s(run: Timed, single: Timed) -> dict[str, float]:
    """CPU seconds by role that ``run``'s calls cost beyond the first: what a run of one call costs (start-up,
    the other milestones, the first call) taken off."""
    return {role: max(0.0, v - single.cpu_s.get(role, 0.0)) for role, v in run.cpu_s.items()}


def cpu_ms_per_call(runs: list[Timed], single: Timed) -> dict[str, float]:
    """Median CPU milliseconds per extra call of each role over ``runs``."""
    roles = sorted({role for run in runs for role in run.cpu_s})
    return {
        role: round(
            statistics.median(
                marginal_cpu_s(run, single).get(role, 0.0) * 1000 / (run.calls - 1) for run in runs
            ),
            1,
        )
        for role in roles
    }


def calls_per_cpu_s(runs: list[Timed], single: Timed) -> float:
    """The scale-out figure: calls per CPU-second of the whole topology (server, database, flow, workers; not
    the rest of the machine), over the calls beyond a run's first; median of rounds."""
    return statistics.median(
        (run.calls - 1)
        / max(1e-9, sum(v for r, v in marginal_cpu_s(run, single).items() if not r.startswith("rest")))
        for run in runs
    )


def print_cpu_by_role(fanned: dict[int, list[Timed]], single: Timed) -> None:
    """What the fanned-out runs' calls cost in CPU, by process: the floor that no number of workers on these
    cores can go below is that CPU time divided by the cores."""
    by_workers = {k: cpu_ms_per_call(v, single) for k, v in fanned.items() if v}
    roles = sorted(
        {role for costs in by_workers.values() for role in costs}, key=lambda r: (r.startswith("rest"), r)
    )
    print_table(
        "CPU per call by process during the fanned-out runs (ms of CPU per call; median of rounds)",
        ["process", *(f"{k} task worker(s)" for k in by_workers)],
        [[role, *(by_workers[k].get(role, 0.0) for k in by_workers)] for role in roles],
    )
    cores = os.cpu_count() or 1
    for workers, runs in fanned.items():
        if not runs:
            continue
        own = statistics.median(
            sum(v for r, v in marginal_cpu_s(run, single).items() if not r.startswith("rest")) for run in runs
        )
        exec_s = statistics.median(run.exec_s for run in runs)
        note(
            f"{workers} worker(s): the topology used {own:.1f} CPU-s for {runs[0].calls - 1} calls beyond a "
            f"run's first: a floor of {own / cores:.1f} s on {cores} cores (exec took {exec_s:.1f} s); "
            f"{calls_per_cpu_s(runs, single):.2f} calls per CPU-second"
        )


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def soak(runs: int, calls: int, limit: int) -> int:
    """The task-worker fan-out ``runs`` times in a row on one worker; 1 on the first run that hangs or fails."""
    steps = [{"name": f"true-{i}", "command": "true"} for i in range(calls)]
    scratch = Path(tempfile.mkdtemp(prefix="codex-bench-soak-"))
    seconds: list[float] = []
    try:
        with postgres_server() as pg, server(scratch / "pg-home", pg) as stack:
            start_worker(stack, "worker-1", limit)
            for run_no in range(runs):
                timed = timed_run(stack, scratch, f"soak-{run_no}", steps, calls, SOAK_RUN_TIMEOUT_S)
                seconds.append(timed.exec_s)
                note(f"soak run {run_no + 1}/{runs}: {calls} calls in {timed.exec_s:.1f} s")
    except BenchError as exc:
        print(f"soak failed after {len(seconds)} good run(s) of {runs}: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print_table(
        f"Soak: {runs} runs of {calls} `true` calls on 1 task worker of --limit {limit}, none hung",
        ["runs", "exec s (median)", "spread"],
        [[runs, statistics.median(seconds), spread(seconds)]],
    )
    finished = Target(len(seconds) / runs, 1.0, at_least=True)
    emit_report(
        "scale_out_soak",
        {"runs": runs, "exec_s": [round(s, 3) for s in seconds]},
        {"runs finished": finished},
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0] if __doc__ else "scale-out")
    args.add_argument(
        "--soak",
        type=int,
        metavar="N",
        help=f"only run the task-worker fan-out N times in a row; fail on a run that takes over "
        f"{SOAK_RUN_TIMEOUT_S:.0f} s (a hang)",
    )
    options = args.parse_args(argv)
    reason = missing_reason()
    if reason:
        print(f"benchmark skipped: {reason}", file=sys.stderr)
        return 1
    if options.soak is not None:
        if options.soak < 1:
            args.error("--soak needs a number of runs >= 1")
        return soak(options.soak, QUICK_CALLS if options.quick else SOAK_CALLS, WORKER_LIMIT)
    quick = options.quick
    calls, sleep_s = (QUICK_CALLS, QUICK_SLEEP_S) if quick else (CALLS, SLEEP_S)
    limit = QUICK_WORKER_LIMIT if quick else WORKER_LIMIT
    rounds = QUICK_ROUNDS if quick else ROUNDS
    overhead_calls = QUICK_OVERHEAD_CALLS if quick else OVERHEAD_CALLS
    sleeps = [{"name": f"sleep-{i}", "command": f"sleep {sleep_s}"} for i in range(calls)]
    trues = [{"name": f"true-{i}", "command": "true"} for i in range(overhead_calls)]
    scratch = Path(tempfile.mkdtemp(prefix="codex-bench-scale-"))
    one: list[float] = []
    two: list[float] = []
    busy: dict[int, list[float]] = {1: [], 2: []}
    fanned: dict[int, list[Timed]] = {1: [], 2: []}
    narrow: dict[int, Timed] = {}
    per_call: dict[str, list[float]] = {"postgresql": [], "sqlite": []}
    try:
        with postgres_server() as pg, server(scratch / "pg-home", pg) as stack:
            start_worker(stack, "worker-1", limit)
            note("warm-up run (untimed) ...")
            timed_run(stack, scratch, "warm-up", sleeps[:limit], calls)
            note("a run of one call (what every run costs besides its calls) ...")
            single = timed_run(stack, scratch, "single", sleeps[:1], calls)
            for round_no in range(rounds):
                note(f"{calls} `sleep {sleep_s}` calls on 1 task worker (round {round_no + 1}/{rounds}) ...")
                timed = timed_run(stack, scratch, f"one-{round_no}", sleeps, calls)
                one.append(timed.exec_s)
                busy[1].append(timed.cpu_busy)
                fanned[1].append(timed)
                start_worker(stack, "worker-2", limit)
                note("... on 2 task workers ...")
                timed = timed_run(stack, scratch, f"two-{round_no}", sleeps, calls)
                two.append(timed.exec_s)
                busy[2].append(timed.cpu_busy)
                fanned[2].append(timed)
                stop_worker(stack, "worker-2")
                note(f"{overhead_calls} sequential `true` calls on PostgreSQL ...")
                per_call["postgresql"].append(
                    timed_run(stack, scratch, f"pg-seq-{round_no}", trues, 1).per_call_ms
                )
            stop_worker(stack, "worker-1")
            start_worker(stack, "worker-1", NARROW_LIMIT)
            note(f"{calls} `sleep {sleep_s}` calls on 1 task worker of --limit {NARROW_LIMIT} ...")
            narrow[1] = timed_run(stack, scratch, "narrow-one", sleeps, calls)
            start_worker(stack, "worker-2", NARROW_LIMIT)
            note("... on 2 ...")
            narrow[2] = timed_run(stack, scratch, "narrow-two", sleeps, calls)
        with server(scratch / "sqlite-home", None) as stack:
            start_worker(stack, "worker-1", limit)
            timed_run(stack, scratch, "sqlite-warm-up", trues[:4], 1)
            for round_no in range(rounds):
                note(
                    f"{overhead_calls} sequential `true` calls on SQLite (round {round_no + 1}/{rounds}) ..."
                )
                per_call["sqlite"].append(
                    timed_run(stack, scratch, f"sqlite-seq-{round_no}", trues, 1).per_call_ms
                )
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    one_s, two_s = statistics.median(one), statistics.median(two)
    pg_ms, sqlite_ms = statistics.median(per_call["postgresql"]), statistics.median(per_call["sqlite"])
    print_table(
        f"{calls} `sleep {sleep_s}` calls, task workers of --limit {limit} (exec milestone, s; median of {rounds})",
        ["task workers", "seconds", "spread", "speed-up", "machine CPU busy"],
        [
            [1, one_s, spread(one), 1.0, f"{statistics.median(busy[1]):.0%}"],
            [2, two_s, spread(two), ratio(one_s, two_s), f"{statistics.median(busy[2]):.0%}"],
        ],
    )
    # Both cores busy with one worker already: the run is CPU-bound on this machine (server, database, flow
    # and workers share its cores), so a second worker on the same cores has nothing to add.
    note(
        "ideal (sleep-bound) exec time: "
        f"{calls * sleep_s / limit:.1f} s on 1 worker, {calls * sleep_s / (2 * limit):.1f} s on 2; "
        f"CPU busy {statistics.median(busy[1]):.0%} / {statistics.median(busy[2]):.0%} of {os.cpu_count()} cores"
    )
    print_table(
        f"Worker-bound: the same calls on task workers of --limit {NARROW_LIMIT} (one round)",
        ["task workers", "seconds", "ideal", "speed-up", "machine CPU busy"],
        [
            [
                k,
                t.exec_s,
                calls * sleep_s / (k * NARROW_LIMIT),
                ratio(narrow[1].exec_s, t.exec_s),
                f"{t.cpu_busy:.0%}",
            ]
            for k, t in sorted(narrow.items())
        ],
    )
    print_cpu_by_role(fanned, single)
    print_table(
        f"Per-call scheduling overhead ({overhead_calls} sequential `true` calls; median start-to-start)",
        ["server database", "ms per call", "spread"],
        [[name, statistics.median(v), spread(v)] for name, v in per_call.items()],
    )
    per_cpu_s = {k: calls_per_cpu_s(v, single) for k, v in fanned.items()}
    targets = {
        "speed-up, 2 task workers vs 1": Target(ratio(one_s, two_s), SCALE_TARGET, at_least=True),
        "calls per CPU-second of the topology, 2 workers / 1": Target(
            ratio(per_cpu_s[2], per_cpu_s[1]), PER_CPU_TARGET, at_least=True
        ),
        "per-call overhead, PostgreSQL / SQLite": Target(ratio(pg_ms, sqlite_ms), OVERHEAD_TARGET),
    }
    results = {
        "one_worker_s": one,
        "two_workers_s": two,
        "per_call_ms": {k: [round(x, 3) for x in v] for k, v in per_call.items()},
        "cpu_busy": {f"{k}_worker": [round(x, 3) for x in v] for k, v in busy.items()},
        "calls_per_cpu_s": {f"{k}_worker": round(v, 3) for k, v in per_cpu_s.items()},
        "cpu_ms_per_call": {f"{k}_worker": cpu_ms_per_call(v, single) for k, v in fanned.items()},
        "worker_bound_s": {f"{k}_worker": round(t.exec_s, 3) for k, t in narrow.items()},
    }
    emit_report("scale_out", results, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
