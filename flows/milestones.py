"""The four milestones of a run, each a Prefect flow: foundation → exec → telemetry → verification.

Each takes the run by value (``MilestoneParams``: where its records are, the secret *names*) and reads the
request the run was started with from its records, so a milestone can run in any process that sees them.
"""

from __future__ import annotations

from prefect import State, flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.states import Completed, Failed
from pydantic import BaseModel, ConfigDict, Field

from codex_orchestrator.execute import read_secrets, record_skipped
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.request import RunRequest, parse_request
from codex_orchestrator.run import RunOwner
from codex_orchestrator.toolcall import call_id_for
from flows.tracing import milestone_span
from flows.verification import record_base_commit, verify
from flows.workflow import gated_run_from_request
from tasks import artifacts
from tasks.approval import PrefectPauseApprover
from tasks.foundation import confirm_drift, load_instruction_files, record_instructions


class MilestoneParams(BaseModel):
    """A milestone's parameters: nothing secret, nothing live."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: RunRef
    secret_env: list[str] = Field(default_factory=list, description="names of the secrets the run reads")


def _flow_run_id() -> str | None:
    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx and ctx.flow_run else None


def _open(params: MilestoneParams) -> tuple[RunOwner, RunRequest]:
    owner = RunOwner.open(params.run, secrets=read_secrets(params.secret_env).values())
    return owner, parse_request(owner.store.read_request())


@flow(name="foundation", persist_result=False)
@milestone_span("foundation")
def foundation(params: MilestoneParams) -> None:
    """Load and hash the instruction hierarchy of every step's cwd; compare it with the task's previous run."""
    owner, request = _open(params)
    try:
        owner.begin_milestone("foundation", _flow_run_id())
        loaded = load_instruction_files(params.run, request.instructions, request.step_cwds(), request.rules)
        record_instructions(owner, request, loaded, get_run_logger())
        record_base_commit(owner)  # what verification's diagnostics measure the run's change from
        get_run_logger().info("run %s: %d instruction file(s) loaded", params.run.run_id, len(loaded.sources))
        owner.end_milestone("foundation", "succeeded")
        artifacts.publish(owner, "foundation")
    finally:
        owner.close()


@flow(name="exec", persist_result=False)
@milestone_span("exec")
def exec_milestone(params: MilestoneParams) -> State[str]:
    """Run the request's steps through the gate as their step graph."""
    owner, request = _open(params)
    try:
        owner.begin_milestone("exec", _flow_run_id())
        if not confirm_drift(owner, request, PrefectPauseApprover()):
            for step in request.steps:
                reason = "instruction drift was not approved"
                record_skipped(params.run, call_id_for("exec", step.name), "exec", step, reason)
            owner.end_milestone("exec", "failed")
            artifacts.publish(owner, "exec")
            return Failed(message="the instruction files changed and starting was not approved")
        run = gated_run_from_request(params.run, request, "exec")
        # No `finally: close()`: after an interrupt, a call paused for approval would be waited for forever.
        ok = run.run_steps(
            request.steps, max_parallel=request.max_parallel, on_failure=request.on_failure, milestone="exec"
        )
        run.close()
        owner.end_milestone("exec", "succeeded" if ok else "failed")
        artifacts.publish(owner, "exec")
    finally:
        owner.close()
    return Completed(message="all steps succeeded") if ok else Failed(message="a step did not succeed")


@flow(name="telemetry", persist_result=False)
@milestone_span("telemetry")
def telemetry(params: MilestoneParams) -> dict[str, object]:
    """Write the run's metrics into its records and the task's snapshots (records/snapshots.py)."""
    owner, _request = _open(params)
    try:
        owner.begin_milestone("telemetry", _flow_run_id())
        owner.compute_metrics()
        owner.write_snapshots()
        owner.end_milestone("telemetry", "succeeded")
        artifacts.publish(owner, "telemetry")
        return owner.state().metrics.model_dump()
    finally:
        owner.close()


@flow(name="verification", persist_result=False)
@milestone_span("verification")
def verification(params: MilestoneParams, exec_succeeded: bool = True) -> State[str]:
    """Diagnostics, spec-guard, the guardrails as tool calls, then the review (flows/verification.py); their
    outcome sets the run status."""
    owner, request = _open(params)
    try:
        owner.begin_milestone("verification", _flow_run_id())
        ok, message = verify(owner, request, exec_succeeded=exec_succeeded)
        status = "skipped" if not exec_succeeded else ("succeeded" if ok else "failed")
        owner.end_milestone("verification", status)
        artifacts.publish(owner, "verification")
    finally:
        owner.close()
    if not exec_succeeded:
        return Completed(message="skipped: exec did not succeed")
    return Completed(message=message) if ok else Failed(message=message)
