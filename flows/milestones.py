"""The four milestones of a run, each a Prefect flow: foundation → exec → telemetry → verification.

Each takes the run by value (``MilestoneParams``: where its records are, the secret *names*) and reads the
request the run was started with from its records, so a milestone can run in any process that sees them.
"""

from __future__ import annotations

from prefect import State, flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.states import Completed, Failed
from pydantic import BaseModel, ConfigDict, Field

from codex_orchestrator.execute import read_secrets
from codex_orchestrator.graph import OnFailure
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.request import RunRequest, parse_request
from codex_orchestrator.run import RunOwner
from flows.tracing import milestone_span
from flows.workflow import gated_run_from_request
from tasks import artifacts
from tasks.foundation import load_instruction_files


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
    """Load and hash the instruction files (the run and its records already exist)."""
    owner, request = _open(params)
    try:
        owner.begin_milestone("foundation", _flow_run_id())
        loaded = load_instruction_files(params.run, request.instructions)
        owner.set_instructions(loaded)
        get_run_logger().info("run %s: %d instruction file(s) loaded", params.run.run_id, len(loaded))
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
    """Write the run's metrics snapshot into its records and the task's metrics.json."""
    owner, _request = _open(params)
    try:
        owner.begin_milestone("telemetry", _flow_run_id())
        owner.compute_metrics()
        owner.write_task_metrics()
        owner.end_milestone("telemetry", "succeeded")
        artifacts.publish(owner, "telemetry")
        return owner.state().metrics.model_dump()
    finally:
        owner.close()


@flow(name="verification", persist_result=False)
@milestone_span("verification")
def verification(params: MilestoneParams, exec_succeeded: bool = True) -> State[str]:
    """Run the guardrail commands as tool calls (their own step graph); their outcome sets the run status."""
    owner, request = _open(params)
    try:
        owner.begin_milestone("verification", _flow_run_id())
        if not exec_succeeded:
            owner.end_milestone("verification", "skipped")
            artifacts.publish(owner, "verification")
            return Completed(message="skipped: exec did not succeed")
        run = gated_run_from_request(params.run, request, "verification")
        ok = run.run_steps(
            request.guardrails,
            max_parallel=request.max_parallel,
            on_failure=OnFailure.CONTINUE,  # every guardrail reports, whatever another found
            milestone="verification",
        )
        run.close()
        owner.end_milestone("verification", "succeeded" if ok else "failed")
        artifacts.publish(owner, "verification")
    finally:
        owner.close()
    return Completed(message="guardrails passed") if ok else Failed(message="guardrails failed")
