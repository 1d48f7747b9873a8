"""``exec`` under Prefect: used when a tool call must pause for an approval that no terminal can answer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext

from codex_orchestrator.errors import OrchestratorError


@dataclass(frozen=True)
class PrefectInfo:
    api_url: str
    flow_run_id: str | None


Job = Callable[[PrefectInfo], int]
_JOBS: dict[str, Job] = {}
_LOCK = threading.Lock()


class ExecJobMissing(OrchestratorError):
    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"exec job {run_id!r} was not submitted from this process (use `codex-orchestrator exec`)"
        )


def submit(run_id: str, job: Job) -> int:
    """Run ``job`` inside the ``exec-tool-call`` flow (in this process) and return its exit code."""
    with _LOCK:
        _JOBS[run_id] = job
    try:
        state = exec_tool_call(run_id, return_state=True)
        result = state.result(raise_on_failure=False)
        if isinstance(result, BaseException):
            raise result
        return int(result)
    finally:
        with _LOCK:
            _JOBS.pop(run_id, None)


@flow(name="exec-tool-call", persist_result=False, flow_run_name="exec-{run_id}")
def exec_tool_call(run_id: str) -> int:
    """One tool call through the gate; an approval pauses this flow run until answered."""
    with _LOCK:
        job = _JOBS.get(run_id)
    if job is None:
        raise ExecJobMissing(run_id)
    ctx = FlowRunContext.get()
    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    return job(
        PrefectInfo(api_url=api_url, flow_run_id=str(ctx.flow_run.id) if ctx and ctx.flow_run else None)
    )
