"""``exec`` under Prefect: the flow a tool call runs in when it may pause for an approval that no terminal can
answer. It takes the call by value, so a worker can run it from the ``exec-tool-call`` deployment too."""

from __future__ import annotations

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.exceptions import TerminationSignal

from codex_orchestrator.execcmd import run_exec
from codex_orchestrator.execute import CallInput
from flows.interrupt import shutdown
from tasks.approval import PrefectPauseApprover


@flow(name="exec-tool-call", persist_result=False, flow_run_name="exec-{call.run.run_id}")
def exec_tool_call(call: CallInput) -> int:
    """One tool call through the gate as a run of its own; an approval pauses its own flow run until answered."""
    ctx = FlowRunContext.get()
    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    flow_run_id = str(ctx.flow_run.id) if ctx and ctx.flow_run else None
    try:
        return run_exec(call, PrefectPauseApprover(), prefect=(api_url, flow_run_id)).exit_code
    except TerminationSignal as exc:  # Prefect's SIGTERM bridge: end now, as Ctrl-C does
        shutdown(exc.signal)
        raise
