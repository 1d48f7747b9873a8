"""``exec`` under Prefect: the flow a tool call runs in when it may pause for an approval that no terminal can
answer. Its parameters hold no secrets and no command: the CLI opens the run first and passes only its
reference (the call is read back from the run's records); a deployment run may pass the call inline instead."""

from __future__ import annotations

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.exceptions import TerminationSignal
from prefect.runtime import flow_run

from codex_orchestrator.errors import RequestError
from codex_orchestrator.execcmd import open_exec_run, run_exec, stored_call
from codex_orchestrator.execute import CallInput, read_secrets
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.run import RunOwner
from flows.interrupt import shutdown
from tasks.approval import PrefectPauseApprover


def _field(value: object, name: str) -> object:
    """A parameter's field: the CLI passes plain dicts, a worker's engine the validated models."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def _name() -> str:
    params = flow_run.parameters or {}
    ref = params.get("run") or _field(params.get("call"), "run")
    run_id = _field(ref, "run_id") if ref is not None else None
    return f"exec-{run_id or 'call'}"


@flow(name="exec-tool-call", persist_result=False, flow_run_name=_name)
def exec_tool_call(run: RunRef | None = None, call: CallInput | None = None) -> int:
    """One tool call through the gate as a run of its own; an approval pauses its own flow run until answered.

    ``run``: an exec run the CLI already opened (its call is in its records). ``call``: open a new one."""
    if (run is None) == (call is None):
        raise RequestError("give exactly one of 'run' and 'call'", field="run")
    ctx = FlowRunContext.get()
    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    flow_run_id = str(ctx.flow_run.id) if ctx and ctx.flow_run else None
    if run is not None:
        call = stored_call(run)
        owner = RunOwner.open(run, secrets=read_secrets(call.secret_env).values())
    else:
        assert call is not None
        owner = open_exec_run(call)
    try:
        return run_exec(call, PrefectPauseApprover(), owner=owner, prefect=(api_url, flow_run_id)).exit_code
    except TerminationSignal as exc:  # Prefect's SIGTERM bridge: end now, as Ctrl-C does
        shutdown(exc.signal)
        raise
