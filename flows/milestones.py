"""The four milestones of a run, each a Prefect flow: foundation → exec → telemetry → verification."""

from __future__ import annotations

from prefect import State, flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.states import Completed, Failed

from codex_orchestrator.request import RunRequest
from tasks import artifacts, context
from tasks.foundation import create_run, load_instruction_files, validate_request
from tasks.tool_call import tool_call


def _flow_run_id() -> str | None:
    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx and ctx.flow_run else None


@flow(name="foundation", persist_result=False)
def foundation(request: RunRequest, run_id: str, runs_dir: str | None = None) -> str:
    """Validate the request, create the run directory and first manifest, load instruction files."""
    checked = validate_request(request)
    create_run(checked, run_id, runs_dir)
    live = context.get(run_id)
    live.recorder.begin_milestone("foundation", _flow_run_id())
    loaded = load_instruction_files(run_id)
    get_run_logger().info("run %s: %d instruction file(s) loaded", run_id, len(loaded))
    live.recorder.end_milestone("foundation", "succeeded")
    artifacts.publish(live.recorder, "foundation")
    return run_id


@flow(name="exec", persist_result=False)
def exec_milestone(run_id: str) -> State[str]:
    """Run the request's steps through the gate, in order; stop at the first that does not succeed."""
    live = context.get(run_id)
    live.recorder.begin_milestone("exec", _flow_run_id())
    status = "succeeded"
    for step in live.request.steps:
        state = tool_call(run_id, step.name, "exec", return_state=True)
        if not state.is_completed():
            status = "failed"
            break
    live.recorder.end_milestone("exec", status)
    artifacts.publish(live.recorder, "exec")
    return (
        Completed(message="all steps succeeded") if status == "succeeded" else Failed(message="a step failed")
    )


@flow(name="telemetry", persist_result=False)
def telemetry(run_id: str) -> dict[str, object]:
    """Write the run's metrics snapshot into its manifest and the task's metrics.json."""
    live = context.get(run_id)
    live.recorder.begin_milestone("telemetry", _flow_run_id())
    live.recorder.compute_metrics()
    live.recorder.write_task_metrics()
    live.recorder.end_milestone("telemetry", "succeeded")
    artifacts.publish(live.recorder, "telemetry")
    return live.recorder.manifest.metrics.model_dump()


@flow(name="verification", persist_result=False)
def verification(run_id: str, exec_succeeded: bool = True) -> State[str]:
    """Run the guardrail commands as tool calls; their outcome sets the run status."""
    live = context.get(run_id)
    live.recorder.begin_milestone("verification", _flow_run_id())
    if not exec_succeeded:
        live.recorder.end_milestone("verification", "skipped")
        artifacts.publish(live.recorder, "verification")
        return Completed(message="skipped: exec did not succeed")
    failed = [
        g.name
        for g in live.request.guardrails
        if not tool_call(run_id, g.name, "verification", return_state=True).is_completed()
    ]
    live.recorder.end_milestone("verification", "failed" if failed else "succeeded")
    artifacts.publish(live.recorder, "verification")
    return (
        Failed(message=f"guardrails failed: {', '.join(failed)}")
        if failed
        else Completed(message="guardrails passed")
    )
