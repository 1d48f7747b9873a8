"""The parent flow of an autonomy run: chains foundation → exec → telemetry → verification as subflows."""

from __future__ import annotations

from prefect import State, flow
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.states import Completed, Failed

from codex_orchestrator.records.paths import new_run_id
from codex_orchestrator.request import RunRequest
from codex_orchestrator.run import EXIT_FAILED, EXIT_OK
from flows.milestones import exec_milestone, foundation, telemetry, verification
from tasks import artifacts, context


@flow(name="autonomy", persist_result=False, log_prints=True)
def autonomy(
    request: RunRequest, run_id: str | None = None, runs_dir: str | None = None
) -> State[dict[str, str]]:
    """One autonomy run. ``run_id`` defaults to a fresh sortable id; records go under ``runs_dir``."""
    run_id = run_id or new_run_id()
    foundation(request, run_id, runs_dir)
    live = context.get(run_id)
    recorder = live.recorder
    ctx = FlowRunContext.get()
    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    recorder.set_prefect(
        api_url=api_url, parent_flow_run_id=str(ctx.flow_run.id) if ctx and ctx.flow_run else None
    )
    try:
        exec_state = exec_milestone(run_id, return_state=True)
        telemetry(run_id)
        verify_state = verification(run_id, exec_succeeded=exec_state.is_completed(), return_state=True)
        calls = recorder.manifest.tool_calls
        if any(c.status == "denied" for c in calls):
            status = "denied"
        elif exec_state.is_completed() and verify_state.is_completed():
            status = "succeeded"
        else:
            status = "failed"
        recorder.finish(status, EXIT_OK if status == "succeeded" else EXIT_FAILED)  # type: ignore[arg-type]
    except BaseException as exc:
        recorder.finish("failed", EXIT_FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        recorder.write_task_metrics()
        live.gate.sessions.close_all()
        context.forget(run_id)
    artifacts.publish(recorder, "final")
    result = {"run_id": run_id, "status": status, "manifest": str(recorder.paths.manifest)}
    if status == "succeeded":
        return Completed(message=f"run {run_id} succeeded", data=result)
    return Failed(message=f"run {run_id} {status}: see {recorder.manifest_rel}", data=result)
