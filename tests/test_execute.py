"""execute.py: one call by value, as the run's steps and the Python API run it (no CLI, no Prefect)."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_orchestrator.approvals import NoApprover
from codex_orchestrator.execute import CallInput, GateSettings, execute_call, record_skipped
from codex_orchestrator.policy import ApprovalPolicy, Capability
from codex_orchestrator.records.store import RunRef, RunStore
from codex_orchestrator.request import Step
from codex_orchestrator.run import RunOwner
from codex_orchestrator.sandbox import SandboxMode


def _run(tmp_path: Path) -> RunRef:
    ref = RunRef(run_id="run-1", task_id="task-a", runs_dir=str(tmp_path / ".runs"), workspace=str(tmp_path))
    RunOwner.create(ref, request={}).close()
    return ref


def test_a_step_that_reads_stdin_sees_end_of_file(tmp_path: Path) -> None:
    # Nobody attaches to a run's step: before the fix `cat` waited for the step's timeout (here 120 s) and
    # the call ended timed_out.
    ref = _run(tmp_path)
    call = CallInput(
        run=ref,
        call_id="exec.reader",
        milestone="exec",
        step=Step(name="reader", command="cat; echo eof-seen", timeout_s=120),
        gate=GateSettings(
            policy=ApprovalPolicy.NEVER, profile=[Capability.READ, Capability.RUN], sandbox=SandboxMode.NONE
        ),
    )
    record = execute_call(call, NoApprover("no one is asked in this test"))
    assert record.status == "succeeded", record.error
    assert record.exit_code == 0


@pytest.mark.parametrize(
    ("step", "shown"),
    [
        (Step(name="s", command=["pytest", "-q", "tests dir"]), "pytest -q 'tests dir'"),
        (Step(name="e", kind="edit", path="notes.md", content="x"), "write notes.md"),
        (Step(name="f", kind="fetch", url="https://example.org/x"), "fetch https://example.org/x"),
    ],
)
def test_a_skipped_step_records_what_it_would_have_run(tmp_path: Path, step: Step, shown: str) -> None:
    ref = _run(tmp_path)
    record = record_skipped(ref, f"exec.{step.name}", "exec", step, "needs 'build', which failed")
    assert record.command == shown
    assert RunStore(ref).read_call(f"exec.{step.name}") == record


def test_a_skipped_steps_command_is_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "tok-93af1e")
    ref = _run(tmp_path)
    step = Step(name="deploy", command="curl -H 'auth: tok-93af1e' https://example.org")
    record = record_skipped(ref, "exec.deploy", "exec", step, "stopped", secret_env=["DEPLOY_TOKEN"])
    assert "tok-93af1e" not in record.command
    assert (
        "tok-93af1e"
        not in (Path(ref.runs_dir) / "task-a")
        .joinpath("cli", "run-1", "calls")
        .joinpath("exec.deploy.json")
        .read_text()
    )
