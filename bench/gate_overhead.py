"""Gate overhead: ms per tool call through the full gate in a Prefect flow, against raw subprocess, a bare Prefect
task and prefect-shell's ShellOperation; then the record cost per call (manifest + event log) at two run sizes.

Run from the repo root: ``PREFECT_HOME=$(mktemp -d) .venv/bin/python bench/gate_overhead.py [--quick]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script (``python bench/gate_overhead.py``): make the repo root importable for ``bench._common``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import os

# Prefect's temporary server gets 20 s to start by default; on a loaded two-core machine that is not enough
# (the benchmark failed with "Timed out while attempting to connect to ephemeral Prefect API server").
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import cProfile
import fcntl
import io
import itertools
import pstats
import shutil
import subprocess
import tempfile
import termios
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect_shell import ShellOperation

from bench._common import (
    NS_PER_US,
    BenchError,
    GcWatch,
    Stats,
    emit_report,
    interleaved_ms,
    note,
    paired_target,
    parser,
    print_table,
    ratio,
    run_in_raw_pty,
)
from codex_orchestrator.approvals import NoApprover
from codex_orchestrator.call_recorder import CallRecorder
from codex_orchestrator.cli import freeze_startup_heap
from codex_orchestrator.clock import utc_now
from codex_orchestrator.errors import OrchestratorError
from codex_orchestrator.exec.backend import SpawnRequest
from codex_orchestrator.exec.launcher import POOL as SANDBOXES
from codex_orchestrator.exec.local import LocalPtyBackend, session_members
from codex_orchestrator.execute import CallInput, GateSettings, close_run_sessions
from codex_orchestrator.gate import ToolOrchestrator
from codex_orchestrator.policy import Capability
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.manifest import AttemptRecord, ToolCallRecord
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.request import Step
from codex_orchestrator.run import RunOwner
from codex_orchestrator.sandbox import SandboxMode, SandboxSpec, host_tmp_entries, wrap_argv
from codex_orchestrator.toolcall import ToolCallSpec, spec_from_step
from tasks.tool_call import by_value, tool_call

COMMAND = "echo x"
SHELL_ARGV = ("/bin/sh", "-c", COMMAND)
STEP_NAME = "echo"
MILESTONE = "exec"
TASK_ID = "bench"
DEFAULT_CALLS = 60
QUICK_CALLS = 3
WARMUP_ROUNDS = 3
QUICK_WARMUP_ROUNDS = 1
RECORD_SIZES = (100, 10_000)
QUICK_RECORD_SIZES = (20, 200)
# Record runs per size (after one untimed warm-up run); the median is reported.
RECORD_REPEATS = 5
QUICK_RECORD_REPEATS = 1
PROFILE_CALLS = 40
PROFILE_LINES = 30
# Where the proposed sandbox layout binds the host's /tmp once, inside the private /tmp.
HOST_TMP_MOUNT = "/tmp/.host-tmp"
# Only stops a broken row from hanging the benchmark; never a measurement bound.
WAIT_S = 60.0
# Targets (issue 13, like for like): the tool-call task ÷ @task(ShellOperation.run()), without and with the
# sandbox; the sandbox's price inside the gate; record cost at the large size ÷ at the small size.
TASK_NONE_OVER_SHELL_TASK_TARGET = 1.0
TASK_BWRAP_OVER_SHELL_TASK_TARGET = 1.2
SANDBOX_PRICE_TARGET = 1.15
RECORD_GROWTH_TARGET = 1.2

# Rows, in table order: raw floors, Prefect baselines, then the gate without and with its Prefect task.
RAW = "subprocess.run"
RAW_PTY = "subprocess.Popen on a PTY"
BACKEND = "LocalPtyBackend spawn, read, close"
RAW_BWRAP = "subprocess.run in bwrap"
TASK = "@task(subprocess.run) in flow"
SHELL_OP = "ShellOperation.run() in flow"
TASK_SHELL_OP = "@task(ShellOperation.run()) in flow"
GATE_NONE = "gate.run, sandbox none"
GATE_BWRAP = "gate.run, workspace-write"
TASK_GATE_NONE = "tool-call task in flow, sandbox none"
TASK_GATE_BWRAP = "tool-call task in flow, workspace-write"
ROWS = (
    RAW,
    RAW_PTY,
    BACKEND,
    RAW_BWRAP,
    TASK,
    SHELL_OP,
    TASK_SHELL_OP,
    GATE_NONE,
    GATE_BWRAP,
    TASK_GATE_NONE,
    TASK_GATE_BWRAP,
)
# Where the time of a tool call goes: (what, row, minus row), from the medians.
BREAKDOWN = (
    ("a Prefect task run", TASK, RAW),
    ("our PTY spawn and teardown over a raw PTY", BACKEND, RAW_PTY),
    ("session threads, gate and records over the backend", GATE_NONE, BACKEND),
    ("bwrap around the command", RAW_BWRAP, RAW),
    ("the sandbox inside the gate", GATE_BWRAP, GATE_NONE),
    ("the tool-call task around the gate", TASK_GATE_NONE, GATE_NONE),
)


def run_raw(argv: Sequence[str] = SHELL_ARGV) -> None:
    done = subprocess.run(argv, capture_output=True, check=False, timeout=WAIT_S)
    if done.returncode != 0 or done.stdout.strip() != b"x":
        raise BenchError(f"{argv[0]} exited {done.returncode}: {done.stdout!r} {done.stderr!r}")


def run_raw_pty() -> None:
    output = bytearray()
    code = run_in_raw_pty(SHELL_ARGV, lambda data, _ns: output.extend(data), WAIT_S)
    if code != 0 or output.strip() != b"x":
        raise BenchError(f"raw PTY child exited {code}: {bytes(output)!r}")


def run_backend(backend: LocalPtyBackend) -> None:
    """The exec layer's process handling alone: spawn on a PTY, read to EOF, end the tree, close."""
    child = backend.spawn(SpawnRequest(argv=SHELL_ARGV))
    try:
        output = bytearray()
        while data := child.read(WAIT_S):
            output.extend(data)
        code = child.terminate_tree()
    finally:
        child.close()
    if code != 0 or output.strip() != b"x":
        raise BenchError(f"LocalPtyBackend child exited {code}: {bytes(output)!r}")


@task(name="bench-subprocess", cache_policy=NO_CACHE, persist_result=False)
def subprocess_task() -> None:
    """The floor for any Prefect task: the same subprocess.run, wrapped in a task run."""
    run_raw()


def run_shell_operation() -> None:
    result = ShellOperation(commands=[COMMAND]).run()
    if result != ["x"]:
        raise BenchError(f"ShellOperation returned {result!r}")


@task(name="bench-shell-operation", cache_policy=NO_CACHE, persist_result=False)
def shell_operation_task() -> None:
    """ShellOperation as flows usually hold it: inside a task, so it shows as a task run like our tool calls."""
    run_shell_operation()


_CALLS = itertools.count(1)


def run_tool_call_task(call: CallInput) -> None:
    """The product's own tool-call task (tasks/tool_call.py), as a milestone flow submits it. Each call gets
    its own id: a call id that already succeeded is (rightly) not run again."""
    fresh = call.model_copy(update={"call_id": f"{call.call_id}-{next(_CALLS)}"})
    state = tool_call(by_value(fresh), return_state=True)
    if not state.is_completed():
        raise BenchError(f"tool-call task of run {call.run.run_id} ended {state.type.value}: {state.message}")


def run_gate(gate: ToolOrchestrator, spec: ToolCallSpec) -> None:
    record = gate.run(spec)
    if record.status != "succeeded":
        raise BenchError(f"gate call {record.id} ended {record.status}: {record.error}")


@dataclass
class LiveRun:
    """A run opened as the autonomy flow opens one, its step by value, and a gate on it for the gate rows."""

    owner: RunOwner
    call: CallInput
    gate: ToolOrchestrator


@contextmanager
def live_run(workspace: Path, sandbox: SandboxMode) -> Iterator[LiveRun]:
    workspace.mkdir(parents=True, exist_ok=True)
    ref = RunRef(
        run_id=f"gate-{sandbox.value}-{uuid.uuid4().hex[:6]}",
        task_id=TASK_ID,
        runs_dir=str(workspace / ".runs"),
        workspace=str(workspace.resolve()),
    )
    owner = RunOwner.create(ref, request={"bench": "gate_overhead"}, with_milestones=False)
    settings = GateSettings(profile=[Capability.READ, Capability.EDIT, Capability.RUN], sandbox=sandbox)
    call = CallInput(
        run=ref,
        call_id="tc-bench",
        milestone=MILESTONE,
        step=Step(name=STEP_NAME, command=COMMAND),
        gate=settings,
    )
    recorder = CallRecorder(owner.store, events=owner.events, tracer=owner.tracer, redact=owner.redact)
    gate = ToolOrchestrator(
        recorder=recorder,
        config=settings.config(),
        # `echo x` is read-only: on-request never asks, and a question would fail the row loudly.
        approver=NoApprover("the benchmark answers no questions"),
    )
    owner.start()
    try:
        yield LiveRun(owner=owner, call=call, gate=gate)
    finally:
        gate.sessions.close_all()
        owner.finish("succeeded", 0)


def step_spec(live: LiveRun) -> ToolCallSpec:
    """The run's one step as the tool-call task turns it into a call."""
    return spec_from_step(
        live.call.step,
        call_id=live.call.call_id,
        workspace=Path(live.call.run.workspace),
        milestone=MILESTONE,
        default_retry=live.call.default_retry,
    )


_LIVE: dict[str, LiveRun] = {}  # the gate rows' live gates, by run id (the task rows take the call by value)


@flow(name="bench-gate-overhead", persist_result=False)
def overhead_flow(
    calls: int, warmup: int, workspace: str, none_call: CallInput, bwrap_call: CallInput
) -> dict[str, list[float]]:
    """Every row once per round, interleaved, inside one flow run; returns ms per call by row."""
    ws = Path(workspace)
    bwrap_argv = wrap_argv(
        SHELL_ARGV, SandboxSpec(SandboxMode.WORKSPACE_WRITE, ws, readable_paths=host_tmp_entries()), cwd=ws
    )
    backend = LocalPtyBackend()
    gate_none, gate_bwrap = _LIVE[none_call.run.run_id], _LIVE[bwrap_call.run.run_id]
    spec = step_spec(gate_none)
    rows: dict[str, Callable[[], object]] = {
        RAW: run_raw,
        RAW_PTY: run_raw_pty,
        BACKEND: lambda: run_backend(backend),
        RAW_BWRAP: lambda: run_raw(bwrap_argv),
        TASK: subprocess_task,
        SHELL_OP: run_shell_operation,
        TASK_SHELL_OP: shell_operation_task,
        GATE_NONE: lambda: run_gate(gate_none.gate, spec),
        GATE_BWRAP: lambda: run_gate(gate_bwrap.gate, spec),
        TASK_GATE_NONE: lambda: run_tool_call_task(none_call),
        TASK_GATE_BWRAP: lambda: run_tool_call_task(bwrap_call),
    }
    return interleaved_ms(rows, calls, warmup)


def measure_overhead(calls: int, warmup: int, workspace: Path) -> tuple[dict[str, list[float]], str]:
    """ms per call of every row, one sample per round (the rounds interleave the rows), and which path the
    workspace-write rows took: the run's kept-alive sandbox, or a bwrap per call (and why)."""
    with (
        live_run(workspace, SandboxMode.NONE) as none_run,
        live_run(workspace, SandboxMode.WORKSPACE_WRITE) as bwrap_run,
    ):
        _LIVE.update({none_run.call.run.run_id: none_run, bwrap_run.call.run.run_id: bwrap_run})
        try:
            samples = overhead_flow(calls, warmup, str(workspace), none_run.call, bwrap_run.call)
            return samples, sandbox_path(bwrap_run.call.run.run_id)
        finally:
            for live in (none_run, bwrap_run):  # the runs' kept sandboxes end with them, as in a flow
                close_run_sessions(live.call.run.run_id)


def sandbox_path(run_id: str) -> str:
    """The path the run's sandboxed calls took after its first: the figures mean different things on each."""
    live, failures = SANDBOXES.kept(run_id)
    if failures:
        return f"a bwrap per call: the kept-alive sandbox did not start ({failures[0]})"
    if live:
        return "the run's kept-alive sandbox (one bwrap, a prepared call init per call)"
    return "a bwrap per call (no kept-alive sandbox was started)"


def profile_gate(workspace: Path, calls: int) -> str:
    """cProfile of ``calls`` gate.run calls (workspace-write, no Prefect), top functions by cumulative time."""
    with live_run(workspace, SandboxMode.WORKSPACE_WRITE) as live:
        spec = step_spec(live)
        run_gate(live.gate, spec)  # warm: imports, the bwrap probe

        def repeat() -> None:
            for _ in range(calls):
                run_gate(live.gate, spec)

        profiler = cProfile.Profile()
        profiler.runcall(repeat)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(PROFILE_LINES)
    return out.getvalue()


def measure_alternatives(workspace: Path, calls: int) -> dict[str, Stats]:
    """Spawn and sandbox as the product does them today, next to the changes proposed in docs/performance.md."""
    workspace.mkdir(parents=True, exist_ok=True)
    entries = host_tmp_entries()
    spec = SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace.resolve(), readable_paths=entries)
    today = wrap_argv(SHELL_ARGV, spec, cwd=spec.workspace)
    without_entries = wrap_argv(SHELL_ARGV, replace(spec, readable_paths=()), cwd=spec.workspace)
    rows: dict[str, Callable[[], object]] = {
        "PTY spawn, preexec_fn TIOCSCTTY (as local.py)": lambda: run_pty(SHELL_ARGV, _take_ctty),
        "PTY spawn, `setsid --ctty` prefix, no preexec_fn": lambda: run_pty(
            ("setsid", "--ctty", *SHELL_ARGV)
        ),
        "/proc scan for one session (session_members)": lambda: session_members(os.getpid()),
        f"bwrap as the gate builds it ({len(entries)} /tmp entries)": lambda: run_raw(today),
        "bwrap, /tmp entries as symlinks into one bind": lambda: run_raw(
            tmp_entries_as_symlinks(without_entries, entries, spec.workspace)
        ),
        "bwrap without the /tmp entries": lambda: run_raw(without_entries),
    }
    samples = interleaved_ms(rows, calls, WARMUP_ROUNDS)
    return {row: Stats.of(ms) for row, ms in samples.items()}


def run_pty(argv: tuple[str, ...], preexec_fn: Callable[[], None] | None = None) -> None:
    """A PTY child made its terminal's session leader: by the hook in the forked child, or by setsid(1)."""
    output = bytearray()
    code = run_in_raw_pty(
        argv,
        lambda data, _ns: output.extend(data),
        WAIT_S,
        new_session=preexec_fn is not None,
        preexec_fn=preexec_fn,
    )
    if code != 0 or output.strip() != b"x":
        raise BenchError(f"{argv[0]} on a PTY exited {code}: {bytes(output)!r}")


def _take_ctty() -> None:
    # What local.py runs between fork and exec; any preexec_fn makes subprocess fork() instead of vfork().
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def tmp_entries_as_symlinks(
    argv: tuple[str, ...], entries: Sequence[Path], workspace: Path
) -> tuple[str, ...]:
    """``argv`` (bwrap without /tmp entries) with the host's /tmp bound read-only once inside the private /tmp
    and each entry a symlink into that bind: one mount instead of one per entry. Entries holding the workspace
    are left out: its own bind must not go through a symlink."""
    at = argv.index("--tmpfs") + 2
    extra = ["--ro-bind", "/tmp", HOST_TMP_MOUNT]
    for entry in entries:
        if not workspace.is_relative_to(entry):
            extra += ["--symlink", f"{HOST_TMP_MOUNT}/{entry.name}", str(entry)]
    return (*argv[:at], *extra, *argv[at:])


@dataclass(frozen=True)
class RecordCost:
    calls: int
    us_per_call: float
    manifest_writes: int
    manifest_bytes: int
    events_bytes: int
    gc_full_collections: int
    gc_us_per_call: float


def measure_record_cost(calls: int, root: Path) -> RecordCost:
    """Drive a fresh run through ``calls`` tool calls exactly as the gate records one, no process spawned."""
    ref = RunRef(
        run_id=f"record-{calls}-{uuid.uuid4().hex[:6]}",
        task_id=TASK_ID,
        runs_dir=str(root / ".runs"),
        workspace=str(root.resolve()),
    )
    root.mkdir(parents=True, exist_ok=True)
    owner = RunOwner.create(ref, request={}, with_milestones=False, trace=False)
    owner.start()
    recorder = CallRecorder(owner.store, events=owner.events, tracer=owner.tracer, redact=owner.redact)
    with GcWatch() as collector:
        started = time.perf_counter_ns()
        for n in range(calls):
            record_one_call(recorder, n)
        elapsed_ns = time.perf_counter_ns() - started
    writes = recorder.folder.writes
    owner.finish("succeeded", 0)
    return RecordCost(
        calls=calls,
        us_per_call=elapsed_ns / NS_PER_US / calls,
        manifest_writes=writes,
        manifest_bytes=owner.paths.manifest.stat().st_size,
        events_bytes=owner.paths.events.stat().st_size,
        gc_full_collections=collector.full_collections,
        gc_us_per_call=collector.elapsed_ns / NS_PER_US / calls,
    )


def measure_record_costs(sizes: Sequence[int], repeats: int, root: Path) -> list[list[RecordCost]]:
    """Per size, ``repeats`` fresh runs (after one untimed warm-up run), the sizes alternating round by round
    so that each round's ratio compares runs made under the same load."""
    measure_record_cost(sizes[0], root / "warm-up")
    runs: list[list[RecordCost]] = [[] for _ in sizes]
    for i in range(repeats):
        for at, size in enumerate(sizes):
            runs[at].append(measure_record_cost(size, root / f"records-{size}-{i}"))
    return runs


def record_one_call(recorder: CallRecorder, n: int) -> None:
    """The recorder calls and events of one successful, sandboxed shell call (gate.py, steps 1-4)."""
    call = ToolCallRecord(
        id=f"tc-step-{n}",
        step=f"step-{n}",
        milestone=MILESTONE,
        kind="shell",
        command=recorder.redact(COMMAND),
        cwd=".",
        backend="local",
        needs=["read"],
        status="pending",
        started_at=utc_now(),
    )
    emit = recorder.events.emit
    started = emit(
        ev.ToolCallStarted(
            tool_call_id=call.id,
            step=call.step,
            kind=call.kind,
            command=call.command,
            cwd=".",
            backend="local",
        )
    )
    recorder.begin_call(call, started.seq)
    call.approval_outcome, call.approval_source = "skip", "not-required"
    emit(ev.ApprovalResolved(tool_call_id=call.id, outcome="not-required", source="not-required"))
    call.sandbox.mode, call.sandbox.state = "workspace-write", "sandboxed"
    call.status = "running"
    emit(ev.AttemptStarted(tool_call_id=call.id, attempt=1, sandboxed=True))
    recorder.touch(call)
    emit(ev.Output(tool_call_id=call.id, session_id="s", stream="pty", chunk_seq=1, data="x\r\n"))
    call.attempts.append(
        AttemptRecord(attempt=1, started_at=utc_now(), duration_ms=1.0, exit_code=0, sandboxed=True)
    )
    call.exit_code, call.output_tail, call.output_bytes, call.session_id = 0, "x\r\n", 3, "s"
    emit(ev.AttemptFinished(tool_call_id=call.id, attempt=1, exit_code=0, duration_ms=1.0, session_id="s"))
    call.status = "succeeded"
    call.duration_ms, call.finished_at = 1.0, utc_now()
    emit(
        ev.ToolCallFinished(
            tool_call_id=call.id,
            status=call.status,
            exit_code=0,
            attempts=1,
            approval_source="not-required",
            sandbox_state="sandboxed",
            duration_ms=1.0,
        )
    )
    recorder.finish_call(call)


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0] if __doc__ else "gate overhead")
    args.add_argument("--calls", type=int, help=f"timed calls per row (default {DEFAULT_CALLS})")
    args.add_argument(
        "--profile",
        action="store_true",
        help=f"also print a cProfile of {PROFILE_CALLS} gate.run calls (workspace-write, no Prefect) to stderr "
        "and time the spawn and sandbox alternatives proposed in docs/performance.md",
    )
    options = args.parse_args(argv)
    calls = options.calls or (QUICK_CALLS if options.quick else DEFAULT_CALLS)
    warmup = QUICK_WARMUP_ROUNDS if options.quick else WARMUP_ROUNDS
    sizes = QUICK_RECORD_SIZES if options.quick else RECORD_SIZES
    repeats = QUICK_RECORD_REPEATS if options.quick else RECORD_REPEATS

    scratch = Path(tempfile.mkdtemp(prefix="codex-bench-gate-"))
    try:
        note(
            f"timing {len(ROWS)} rows x {calls} calls (+{warmup} warm-up rounds), interleaved in one flow ..."
        )
        samples, sandboxed_by = measure_overhead(calls, warmup, scratch / "workspace-flow")
        note(f"the workspace-write rows ran in {sandboxed_by}")
        # The sandbox shows the host's /tmp entries (one symlink each; entries holding a bind are bound).
        tmp_entries = len(host_tmp_entries())
        # As the CLI does before a run starts (codex_orchestrator.cli.freeze_startup_heap).
        freeze_startup_heap()
        note(f"recording {' and '.join(map(str, sizes))} tool calls without processes, {repeats}x each ...")
        cost_runs = measure_record_costs(sizes, repeats, scratch / "records")
        alternatives: dict[str, Stats] = {}
        if options.profile:
            note(profile_gate(scratch / "workspace-profile", PROFILE_CALLS))
            note(f"timing spawn and sandbox alternatives, {calls} calls each ...")
            alternatives = measure_alternatives(scratch / "workspace-alternatives", calls)
    except (BenchError, OrchestratorError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report(samples, cost_runs, calls, tmp_entries, alternatives, sandboxed_by)
    return 0


def report(
    samples: dict[str, list[float]],
    cost_runs: list[list[RecordCost]],
    calls: int,
    tmp_entries: int,
    alternatives: dict[str, Stats],
    sandboxed_by: str,
) -> None:
    stats = {row: Stats.of(samples[row]) for row in ROWS}
    # The run of median cost of each size, for the table.
    costs = [sorted(runs, key=lambda cost: cost.us_per_call)[len(runs) // 2] for runs in cost_runs]
    raw, shell_op = stats[RAW].p50, stats[SHELL_OP].p50
    print_table(
        f"Per tool call running `{COMMAND}` ({calls} calls a row, interleaved; ms)",
        ["row", "median", "p95", "x raw", "x ShellOperation"],
        [[row, s.p50, s.p95, ratio(s.p50, raw), ratio(s.p50, shell_op)] for row, s in stats.items()],
    )
    breakdown = {what: stats[row].p50 - stats[minus].p50 for what, row, minus in BREAKDOWN}
    print_table(
        f"Where the time goes (differences of medians, host /tmp has {tmp_entries} entries; ms)",
        ["cost of", "ms"],
        [[what, ms] for what, ms in breakdown.items()],
    )
    print(f"The workspace-write rows ran in {sandboxed_by}.")
    like_for_like = {
        f"{row} / {TASK_SHELL_OP}": ratio(stats[row].p50, stats[TASK_SHELL_OP].p50)
        for row in (TASK_GATE_NONE, TASK_GATE_BWRAP)
    }
    print_table(
        "Like for like: both sides task runs (ratio of medians)",
        ["rows", "ratio"],
        [[rows, value] for rows, value in like_for_like.items()],
    )
    print_table(
        "Record cost per tool call (manifest + event log, no process; median run)",
        ["calls", "us/call", "of which GC", "full GCs", "manifest writes", "manifest KiB", "events KiB"],
        [
            [
                c.calls,
                c.us_per_call,
                c.gc_us_per_call,
                c.gc_full_collections,
                c.manifest_writes,
                c.manifest_bytes // 1024,
                c.events_bytes // 1024,
            ]
            for c in costs
        ],
    )
    if alternatives:
        print_table(
            f"Spawn and sandbox alternatives (this process, {calls} calls each, interleaved; ms)",
            ["variant", "median", "p95"],
            [[row, s.p50, s.p95] for row, s in alternatives.items()],
        )
    small, large = costs[0], costs[-1]
    targets = {
        "tool-call task in flow, sandbox none / @task(ShellOperation.run())": paired_target(
            samples[TASK_GATE_NONE], samples[TASK_SHELL_OP], TASK_NONE_OVER_SHELL_TASK_TARGET
        ),
        "tool-call task in flow, workspace-write / @task(ShellOperation.run())": paired_target(
            samples[TASK_GATE_BWRAP], samples[TASK_SHELL_OP], TASK_BWRAP_OVER_SHELL_TASK_TARGET
        ),
        "gate.run workspace-write / gate.run sandbox none": paired_target(
            samples[GATE_BWRAP], samples[GATE_NONE], SANDBOX_PRICE_TARGET
        ),
        f"record us/call at {large.calls} / at {small.calls}": paired_target(
            [c.us_per_call for c in cost_runs[-1]],
            [c.us_per_call for c in cost_runs[0]],
            RECORD_GROWTH_TARGET,
        ),
    }
    results: dict[str, Any] = {
        "command": COMMAND,
        "calls_per_row": calls,
        "rows": {
            row: {
                **s.as_dict(),
                "x_raw": round(ratio(s.p50, raw), 3),
                "x_shell_operation": round(ratio(s.p50, shell_op), 3),
            }
            for row, s in stats.items()
        },
        "breakdown_ms": {what: round(ms, 3) for what, ms in breakdown.items()},
        "host_tmp_entries": tmp_entries,
        "sandbox_path": sandboxed_by,
        "like_for_like": {rows: round(value, 3) for rows, value in like_for_like.items()},
        "record_cost": [
            {
                "calls": c.calls,
                "us_per_call": round(c.us_per_call, 2),
                "manifest_writes": c.manifest_writes,
                "manifest_bytes": c.manifest_bytes,
                "events_bytes": c.events_bytes,
                "gc_full_collections": c.gc_full_collections,
                "gc_us_per_call": round(c.gc_us_per_call, 2),
            }
            for c in costs
        ],
    }
    if alternatives:
        results["alternatives"] = {row: s.as_dict() for row, s in alternatives.items()}
    emit_report("gate_overhead", results, targets)


if __name__ == "__main__":
    sys.exit(main())
