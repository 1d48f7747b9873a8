"""The task snapshots (metrics, post-rollout, completeness, state, mttr-delta) are made from the runs' event
logs alone: ``metrics --recompute`` rebuilds them byte for byte over 25 real runs with failures, policy and
human denials, retries, failed guardrails, gate-off runs before the rollout, and two runs finishing at once.

The runs are driven in-process through ``RunOwner`` and ``execute_call`` (the real gate, real PTYs, no
sandbox for speed), milestone by milestone as the autonomy flow does, snapshots written at telemetry and at
the end of each run."""

from __future__ import annotations

import json
import shutil
import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest

from codex_orchestrator.approvals import Announce, ApprovalAnswer, ApprovalRequest, Decision
from codex_orchestrator.cli import main
from codex_orchestrator.execute import CallInput, GateSettings, execute_call
from codex_orchestrator.policy import ApprovalPolicy, Capability
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import EventLog
from codex_orchestrator.records.metrics import RunDigest, digest_log
from codex_orchestrator.records.snapshots import (
    SnapshotConfig,
    SnapshotPaths,
    build_snapshots,
    incidents,
    recompute,
)
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.request import RetrySettings, Step
from codex_orchestrator.run import RunOwner, run_outcome
from codex_orchestrator.sandbox import SandboxMode
from codex_orchestrator.toolcall import call_id_for

TASK = "mixed"
# Four runs with the gate off (the baseline before the rollout), then twenty-one with it on; the last two (alike,
# so that which of them ends first changes no figure) finish at the same time.
PLAN = ["fail", "ok", "fail", "ok"] + 2 * [
    "ok", "retry", "fail", "fail", "ok", "never", "approved", "guard-fail", "untrusted", "ok",
] + ["ok"]  # fmt: skip
FLAKY = "if [ -e .flag-$RUN ]; then echo recovered; else touch .flag-$RUN; exit 75; fi"


class Answers:
    """A reviewer that answers from a queue (the gate's approver seam), through the ``cli`` channel."""

    def __init__(self) -> None:
        self.queue: deque[Decision] = deque()

    def ask(self, request: ApprovalRequest, announce: Announce) -> ApprovalAnswer:
        announce(None)
        decision = self.queue.popleft()
        return ApprovalAnswer(decision, reason="scripted", answered_by="cli", reviewer="tester")


def _steps(kind: str) -> tuple[list[tuple[Step, GateSettings]], list[Step], list[Decision]]:
    """The exec steps (with their gate), the guardrails and the reviewer's answers of one kind of run."""
    base = GateSettings(
        sandbox=SandboxMode.NONE, profile=[Capability.READ, Capability.EDIT, Capability.RUN], enabled=True
    )
    guard = [Step(name="lint", command="true"), Step(name="tests", command="echo tests pass")]
    if kind == "ok":
        return [(Step(name="build", command="echo built"), base)], guard, []
    if kind == "fail":
        return [(Step(name="build", command="echo broken; exit 3"), base)], [], []
    if kind == "retry":
        retry = RetrySettings(base_delay_s=0, max_delay_s=0, jitter=0)
        return [(Step(name="flaky", command=FLAKY, retry=retry), base)], guard, []
    if kind == "never":
        never = base.model_copy(update={"policy": ApprovalPolicy.NEVER, "profile": [Capability.READ]})
        return [(Step(name="write", command="touch out.txt"), never)], [], []
    if kind == "untrusted":
        untrusted = base.model_copy(update={"policy": ApprovalPolicy.UNTRUSTED})
        return [(Step(name="write", command="touch out.txt"), untrusted)], [], [Decision.DENY]
    if kind == "approved":
        return (
            [(Step(name="push", command="echo pushed", approval="required"), base)],
            guard,
            [Decision.APPROVE],
        )
    assert kind == "guard-fail"
    return (
        [(Step(name="build", command="echo built"), base)],
        [*guard, Step(name="eval", command="exit 1")],
        [],
    )


def _run(root: Path, number: int, kind: str, answers: Answers, *, finish: bool = True) -> RunOwner:
    gate_on = number > 4
    run_id = f"r{number:02d}"
    ref = RunRef(run_id=run_id, task_id=TASK, runs_dir=str(root / ".runs"), workspace=str(root))
    owner = RunOwner.create(ref, request={"kind": kind}, gate_enabled=gate_on)
    owner.start()
    steps, guardrails, decisions = _steps(kind)
    answers.queue.extend(decisions)

    def call(milestone: str, step: Step, gate: GateSettings) -> bool:
        step = step.model_copy(update={"env": {"RUN": run_id}})
        gate = gate.model_copy(update={"enabled": gate_on})
        record = execute_call(
            CallInput(
                run=ref, call_id=call_id_for(milestone, step.name), milestone=milestone, step=step, gate=gate
            ),
            answers,
        )
        return record.status == "succeeded"

    owner.begin_milestone("foundation")
    owner.end_milestone("foundation", "succeeded")
    owner.begin_milestone("exec")
    exec_ok = all([call("exec", step, gate) for step, gate in steps])
    owner.end_milestone("exec", "succeeded" if exec_ok else "failed")
    owner.begin_milestone("telemetry")
    owner.compute_metrics()
    owner.write_snapshots()  # as the telemetry milestone does, before the run is over
    owner.end_milestone("telemetry", "succeeded")
    owner.begin_milestone("verification")
    verify_ok = all([call("verification", step, steps[0][1]) for step in guardrails]) if exec_ok else True
    owner.end_milestone("verification", "succeeded" if exec_ok and verify_ok else "skipped")
    if finish:
        status = run_outcome(owner.manifest(), required_ok=exec_ok and verify_ok)
        owner.finish(status, 0 if status == "succeeded" else 1)
    return owner


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace whose task has 25 finished runs; the last two finish at the same time."""
    root = tmp_path_factory.mktemp("history")
    answers = Answers()
    for number, kind in enumerate(PLAN[:-2], start=1):
        _run(root, number, kind, answers)
    last = [_run(root, n, k, answers, finish=False) for n, k in enumerate(PLAN[-2:], start=len(PLAN) - 1)]
    outcomes = [run_outcome(o.manifest()) for o in last]
    threads = [
        threading.Thread(target=o.finish, args=(s, 0 if s == "succeeded" else 1))
        for o, s in zip(last, outcomes, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return root


def _copy(history: Path, tmp_path: Path) -> Path:
    shutil.copytree(history / ".runs", tmp_path / ".runs")
    shutil.copytree(history / "out", tmp_path / "out")
    return tmp_path


def _doc(root: Path, name: str) -> dict[str, object]:
    return json.loads(SnapshotPaths(root / ".runs", TASK).files()[name].read_text())  # type: ignore[index]


def test_recompute_is_byte_identical_to_what_the_runs_wrote(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = SnapshotPaths(history / ".runs", TASK)
    assert all(p.is_file() for p in paths.files().values())
    assert main(["metrics", "--recompute", TASK, "--runs-dir", str(history / ".runs")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5 and all(line.startswith("identical") for line in out), out
    assert {row[0] for row in recompute(paths)} == {
        "metrics",
        "post-rollout",
        "completeness",
        "state",
        "mttr-delta",
    }


def test_recompute_needs_nothing_but_the_event_logs(history: Path, tmp_path: Path) -> None:
    root = _copy(history, tmp_path)
    for extra in (root / ".runs" / TASK).glob("cli/*/*"):
        if extra.name != "events.jsonl":  # manifests, run.json, calls, approvals: all gone
            shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
    shutil.rmtree(root / ".runs" / TASK / "metrics" / ".digests")
    assert [s for _n, _p, s, _c in recompute(SnapshotPaths(root / ".runs", TASK))] == ["identical"] * 5


def test_the_snapshots_say_what_happened(history: Path) -> None:
    metrics = _doc(history, "metrics")
    rows = metrics["runs"]
    assert isinstance(rows, list) and [r["run_id"] for r in rows] == [f"r{n:02d}" for n in range(1, 26)]
    statuses = [r["status"] for r in rows]
    assert statuses.count("denied") == 4 and statuses.count("failed") == 2 + 6
    aggregates = metrics["aggregates"]
    assert isinstance(aggregates, dict)
    assert aggregates["runs"] == 25 and aggregates["retries"] == 2 and aggregates["succeeded_runs"] == 13
    assert aggregates["incidents"] == aggregates["recovered"] == 8
    # r06: the flaky step twice (again after exit 75), then two guardrails
    assert rows[5]["attempts"] == 4 and rows[5]["retries"] == 1

    post = _doc(history, "post-rollout")
    assert post["marker"] == {"at": rows[4]["started_at"], "chosen_by": "first-gated-run", "run_id": "r05"}
    runs = post["runs"]
    assert isinstance(runs, dict) and runs["total"] == 21 and runs["gate_off"] == 0
    assert runs["denial_rate"] == round(4 / 21, 4) and runs["success_rate"] == round(11 / 21, 4)
    guardrails = post["guardrails"]
    assert isinstance(guardrails, dict) and guardrails["by_name"]["eval"]["pass_rate"] == 0.0
    assert guardrails["by_name"]["lint"] == {
        "passed": 13,
        "failed": 0,
        "skipped": 0,
        "error": 0,
        "pass_rate": 1.0,
    }
    assert post["tool_calls"]["denied"] == 4  # type: ignore[index]

    completeness = _doc(history, "completeness")
    assert completeness["aggregates"] == {"runs": 25, "complete_runs": 25, "mean_share": 1.0}

    delta = _doc(history, "mttr-delta")
    assert delta["window_chosen_by"] == "rollout marker (first-gated-run)"
    baseline, current = delta["baseline"], delta["current"]
    assert isinstance(baseline, dict) and isinstance(current, dict)
    assert (baseline["incidents"], current["incidents"]) == (2, 6)
    assert baseline["to"] == current["from"] == rows[4]["started_at"]
    assert delta["delta_ms"] == current["mttr_ms"] - baseline["mttr_ms"]

    state = _doc(history, "state")
    assert state["runs"] == 25 and state["consecutive_failures"] == 0 and state["open_incident"] is None
    assert state["latest"]["run_id"] in ("r24", "r25")  # type: ignore[index]


def test_an_edited_log_no_longer_recomputes_the_same_and_write_repairs(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy(history, tmp_path)
    log = root / ".runs" / TASK / "cli" / "r03" / "events.jsonl"
    log.write_bytes(log.read_bytes().replace(b'"status":"failed"', b'"status":"succeeded"'))
    runs = str(root / ".runs")
    assert main(["metrics", "--recompute", TASK, "--runs-dir", runs]) == 1
    out = capsys.readouterr().out
    assert "differs   metrics" in out and "differs   completeness" in out  # r03's chain is broken now
    assert main(["metrics", "--recompute", "--write", TASK, "--runs-dir", runs]) == 1
    capsys.readouterr()
    assert main(["metrics", "--recompute", TASK, "--runs-dir", runs]) == 0
    r03 = next(r for r in _doc(root, "completeness")["runs"] if r["run_id"] == "r03")  # type: ignore[attr-defined]
    assert r03["missing"] == ["chain"]


def test_choices_are_recorded_and_bad_ones_refused(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy(history, tmp_path)
    runs = str(root / ".runs")
    before = {p: p.read_bytes() for p in SnapshotPaths(root / ".runs", TASK).files().values()}
    assert main(["metrics", TASK, "--runs-dir", runs, "--rollout-at", "yesterday"]) == 2
    assert "--rollout-at: not an ISO 8601 time" in capsys.readouterr().err
    assert main(["metrics", "nope", "--runs-dir", runs]) == 2
    assert {p: p.read_bytes() for p in before} == before
    started = _doc(root, "metrics")["runs"][2]["started_at"]  # type: ignore[index]
    assert main(["metrics", TASK, "--runs-dir", runs, "--baseline", f"..{started}"]) == 0
    capsys.readouterr()
    delta = _doc(root, "mttr-delta")
    assert delta["window_chosen_by"] == "config" and delta["baseline"]["incidents"] == 1  # type: ignore[index]
    assert main(["metrics", "--recompute", TASK, "--runs-dir", runs]) == 0


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _digest(run_id: str, start: float, end: float, status: str, gate: bool = True) -> RunDigest:
    return RunDigest(
        run_id=run_id, started_at=_at(start), finished_at=_at(end), status=status, gate_enabled=gate
    )


def test_mttr_is_the_mean_time_from_a_failure_to_the_next_success() -> None:
    runs = [
        _digest("a", 0, 1, "failed", gate=False),  # outage 1: a and b fail, c recovers 10 min after a ended
        _digest("b", 2, 3, "denied", gate=False),
        _digest("c", 10, 11, "succeeded", gate=False),
        _digest("d", 20, 21, "succeeded"),  # the rollout: first gated run
        _digest("e", 30, 31, "interrupted"),  # outage 2: 4 minutes
        _digest("f", 34, 35, "succeeded"),
        _digest("g", 40, 41, "failed"),  # still open
    ]
    found = incidents(runs)
    assert [(i["failed_run"], i["recovered_by"], i["ms"], i["failed_runs"]) for i in found] == [
        ("a", "c", 600_000, 2),
        ("e", "f", 240_000, 1),
        ("g", None, None, 1),
    ]
    docs = build_snapshots("t", runs, SnapshotConfig())
    assert docs["metrics"]["aggregates"]["mttr_ms"] == 420_000  # (600 + 240) / 2 s, not the mean duration
    delta = docs["mttr-delta"]
    assert (delta["baseline"]["mttr_ms"], delta["current"]["mttr_ms"], delta["delta_ms"]) == (
        600_000,
        240_000,
        -360_000,
    )
    assert delta["ratio"] == 0.4 and delta["current"]["incidents"] == 2
    assert docs["state"]["open_incident"]["failed_run"] == "g" and docs["state"]["consecutive_failures"] == 1
    chosen = build_snapshots("t", runs, SnapshotConfig(rollout_at=_at(33)))
    assert chosen["post-rollout"]["marker"]["chosen_by"] == "config"
    assert chosen["post-rollout"]["runs"]["total"] == 2


class GuardrailResult(ev._Event):
    """The verification milestone's own verdict on a guardrail (emitted by the verification helper's code)."""

    type: Literal["guardrail.result"] = "guardrail.result"
    name: str
    result: str
    required: bool
    call_id: str


def test_guardrail_result_events_take_precedence_over_call_statuses(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, "g1")
    log.emit(ev.RunStarted(task_id="t", manifest="m"))
    log.emit(ev.MilestoneStarted(milestone="verification"))
    for step in ("lint", "docs"):
        log.emit(ev.ToolCallStarted(tool_call_id=f"tc-{step}", step=step, kind="shell", command="true", cwd=".",
                                    backend="local", milestone="verification"))  # fmt: skip
        finished = {"status": "succeeded", "exit_code": 0, "attempts": 1, "approval_source": "not-required"}
        log.emit(
            ev.ToolCallFinished(tool_call_id=f"tc-{step}", sandbox_state="none", duration_ms=1.0, **finished)
        )
    derived = digest_log(path.read_bytes(), "g1")
    assert [(g.name, g.result, g.source) for g in derived.guardrails] == [
        ("docs", "passed", "tool-call"),
        ("lint", "passed", "tool-call"),
    ]
    log.emit(GuardrailResult(name="lint", result="failed", required=True, call_id="tc-lint"))
    log.emit(GuardrailResult(name="docs", result="skipped", required=False, call_id="tc-docs"))
    log.emit(ev.MilestoneFinished(milestone="verification", status="failed"))
    log.emit(ev.RunFinished(status="failed", exit_code=1))
    log.close()
    told = digest_log(path.read_bytes(), "g1")
    assert [(g.name, g.result, g.required, g.source) for g in told.guardrails] == [
        ("docs", "skipped", False, "guardrail.result"),
        ("lint", "failed", True, "guardrail.result"),
    ]
    post = build_snapshots("t", [told], SnapshotConfig())["post-rollout"]["guardrails"]
    assert (post["failed"], post["skipped"], post["pass_rate"]) == (1, 1, 0.0)
    assert post["required"]["failed"] == 1 and post["required"]["skipped"] == 0


def test_a_log_edited_into_nonsense_is_reported_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, "n1")
    log.emit(ev.RunStarted(task_id="t", manifest="m"))
    log.emit(ev.AttemptStarted(tool_call_id="tc", attempt=1, sandboxed=False))
    log.emit(ev.RunFinished(status="succeeded", exit_code=0))
    log.close()
    path.write_bytes(
        path.read_bytes().replace(b'"attempt":1', b'"attempt":"x"').replace(b'"ts":"', b'"ts":"y', 1)
    )
    digest = digest_log(path.read_bytes(), "n1")
    assert not digest.chain_intact and digest.started_at is None and digest.finished
    assert build_snapshots("t", [digest], SnapshotConfig())["completeness"]["runs"][0]["missing"] == [
        "run.started",
        "attempts",  # never finished
        "chain",
    ]
