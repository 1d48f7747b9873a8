"""One tool call through the ToolOrchestrator gate, as a Prefect task (never cached: tool calls have effects)."""

from __future__ import annotations

import os

from prefect import State, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.states import Completed, Failed

from codex_orchestrator.request import Step
from codex_orchestrator.toolcall import spec_from_step
from tasks import context


@task(name="tool-call", task_run_name="{milestone}:{step_name}", cache_policy=NO_CACHE, persist_result=False)
def tool_call(run_id: str, step_name: str, milestone: str) -> State[str]:
    live = context.get(run_id)
    request = live.request
    step = _find_step(request.steps + request.guardrails, step_name)
    secret_env = {name: os.environ[name] for name in request.secret_env if name in os.environ}
    task_ctx = TaskRunContext.get()
    spec = spec_from_step(
        step,
        workspace=live.recorder.workspace,
        milestone=milestone,
        default_retry=request.retry,
        extra_env=secret_env,
        fetch=request.fetch,
        # In the record from its creation: a finished call's JSON is cached, so setting it afterwards was lost.
        prefect_task_run_id=str(task_ctx.task_run.id) if task_ctx is not None else None,
    )
    record = live.gate.run(spec)
    summary = (
        f"{record.id} {step_name}: {record.status} (exit {record.exit_code}, {len(record.attempts)} attempt(s), "
        f"approval {record.approval_source}, sandbox {record.sandbox.state})"
    )
    get_run_logger().info(live.recorder.redact(summary))
    if record.status == "succeeded":
        return Completed(message=summary, data=record.status)
    return Failed(message=live.recorder.redact(f"{summary}: {record.error or ''}"), data=record.status)


def _find_step(steps: list[Step], name: str) -> Step:
    for step in steps:
        if step.name == name:
            return step
    raise KeyError(f"no step named {name!r} in the request")
