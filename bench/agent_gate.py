"""Agent gate overhead: one scripted codex turn of short read-only commands, every one asked of and decided by
our gate and recorded as a tool call, against the same codex with approval ``never`` (no approval requests, no
per-call records), in the same sandbox, driven by the same scripted model. Also the approval round trip (request
received → answer sent) of the calls nobody was asked about.

Run from the repo root: ``PREFECT_HOME=$(mktemp -d) .venv/bin/python bench/agent_gate.py [--quick]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script (``python bench/agent_gate.py``): make the repo root importable for ``bench._common``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from typing import Any

from bench._common import BenchError, Stats, Target, emit_report, note, parser, print_table
from codex_orchestrator.agents import step as agent_step
from codex_orchestrator.agents.codex import CodexStep
from codex_orchestrator.agents.scripted_model import ScriptedModel
from codex_orchestrator.approvals import NoApprover
from codex_orchestrator.call_recorder import CallRecorder
from codex_orchestrator.gate import GateConfig
from codex_orchestrator.policy import ApprovalPolicy, Capability
from codex_orchestrator.records.events import EventLog
from codex_orchestrator.records.store import RunRef, RunStore
from codex_orchestrator.redact import Redactor
from codex_orchestrator.run import RunOwner
from codex_orchestrator.telemetry import RunTracer

WALL_TARGET = 1.3  # gated ÷ ungated wall time of the turn
ROUND_TRIP_TARGET_MS = 20.0  # p95, calls that need no person
COMMANDS = ("cat calc.py", "ls", "wc -l calc.py", "head -n 1 calc.py", "grep -c def calc.py")


def script(n: int) -> list[Any]:
    return [[{"exec": COMMANDS[i % len(COMMANDS)]}] for i in range(n)] + [[{"message": "done"}]]


def one_turn(root: Path, n: int, *, gated: bool, label: str) -> tuple[float, list[float]]:
    """Wall time (s) of one agent step of ``n`` commands, and its calls' round trips (ms)."""
    workspace = root / label
    workspace.mkdir()
    (workspace / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    ref = RunRef(
        run_id="bench-1", task_id="agent-bench", runs_dir=str(workspace / ".runs"), workspace=str(workspace)
    )
    RunOwner.create(ref, request={}).close()
    store = RunStore(ref)
    redact = Redactor(())
    events = EventLog(store.paths.events, ref.run_id, redact)
    tracer = RunTracer(
        store.paths.traces, run_id=ref.run_id, task_id=ref.task_id, redact=redact, export=False
    )
    recorder = CallRecorder(store, events=events, tracer=tracer, redact=redact)
    with ScriptedModel(script(n)) as model:
        step = CodexStep(
            call_id="exec.agent",
            step="agent",
            milestone="exec",
            prompt="read the code",
            workspace=workspace.resolve(),
            cwd=workspace.resolve(),
            agent_dir=store.paths.run_dir / "agents" / "exec.agent",
            gate=GateConfig(
                policy=ApprovalPolicy.ON_REQUEST, profile=frozenset({Capability.READ, Capability.RUN})
            ),
            codex_config=model.provider_overrides(),
            timeout_s=600,
        )
        if not gated:
            step = replace(step, approval_policy_override="never")
        del agent_step.step_round_trips[:]
        started = time.perf_counter()
        record = agent_step.run_codex_step(step, recorder, NoApprover("nobody is asked in the bench"))
        wall = time.perf_counter() - started
        if record.status != "succeeded":
            raise BenchError(f"{label}: the agent step {record.status}: {record.error}")
        if model.played != n + 1:
            raise BenchError(f"{label}: the model played {model.played} of {n + 1} responses")
    calls = list((store.run_dir / "calls").glob(f"{step.call_id}.*.json")) if gated else []
    if gated and len(calls) != n:
        raise BenchError(f"{label}: {len(calls)} agent calls recorded, expected {n}")
    events.close()
    tracer.shutdown()
    return wall, list(agent_step.step_round_trips)


def main() -> int:
    args = parser(__doc__.splitlines()[0]).parse_args()
    n, rounds = (5, 1) if args.quick else (50, 3)
    root = Path(tempfile.mkdtemp(prefix="agent-bench-", dir=str(Path.home())))  # codex's home not under /tmp
    try:
        note(f"agent_gate: {rounds} round(s) of one turn of {n} commands, gated and ungated, interleaved")
        one_turn(root, 2, gated=True, label="warmup")  # codex's first start pays for page cache and rollouts
        gated: list[float] = []
        plain: list[float] = []
        trips: list[float] = []
        for r in range(rounds):
            order = (True, False) if r % 2 == 0 else (False, True)
            for is_gated in order:
                wall, rts = one_turn(
                    root, n, gated=is_gated, label=f"r{r}-{'gated' if is_gated else 'plain'}"
                )
                (gated if is_gated else plain).append(wall)
                trips.extend(rts)
                note(f"  round {r + 1}: {'gated' if is_gated else 'never'} {wall:.2f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratios = [g / p for g, p in zip(gated, plain, strict=True)]
    trip_stats = Stats.of(trips)
    print_table(
        f"One codex turn of {n} read-only commands (s)",
        ["path", "median", "min", "max"],
        [
            ["under our gate (asked, decided, recorded)", statistics.median(gated), min(gated), max(gated)],
            ["approval never (no client in the loop)", statistics.median(plain), min(plain), max(plain)],
        ],
    )
    print_table(
        "Approval round trip, request received → answer sent (ms)",
        ["calls", "p50", "p95", "p99"],
        [[trip_stats.n, trip_stats.p50, trip_stats.p95, trip_stats.p99]],
    )
    targets = {
        "agent turn wall, gated ÷ never": Target(
            ratio=statistics.median(ratios),
            target=WALL_TARGET,
            spread=(min(ratios), max(ratios)),
            rounds=len(ratios),
        ),
        "approval round trip p95 (ms)": Target(ratio=trip_stats.p95, target=ROUND_TRIP_TARGET_MS, unit="ms"),
    }
    results = {
        "commands": n,
        "rounds": rounds,
        "gated_s": gated,
        "never_s": plain,
        "round_trip_ms": trip_stats.as_dict(),
    }
    emit_report("agent_gate", results, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
