"""One tool call of an agent (a command, a patch, a permission codex asks for), as a Prefect task run under the
agent step's task run, named after the command, in the state of the call.

The work is a live closure, not a parameter model: the call answers a codex process that this process started and
talks to over its stdio, so it can run nowhere else (tasks/tool_call.py's agent step can; its agent's calls follow
it). It is handed over ````quote``d, so Prefect does not walk it (Prefect hands the task the callable itself).
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import State, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed
from prefect.utilities.annotations import quote

from codex_orchestrator.records.manifest import ToolCallRecord


@task(name="agent-tool-call", task_run_name="{name}", cache_policy=NO_CACHE, persist_result=False)
def agent_tool_call(name: str, work: Callable[[], ToolCallRecord]) -> State[str]:
    record = work()
    summary = f"{record.id}: {record.status} (approval {record.approval_source}, exit {record.exit_code})"
    if record.status == "succeeded":
        return Completed(message=summary, data=record.status)
    return Failed(message=f"{summary}: {record.error or ''}", data=record.status)


def run_as_task(name: str, work: Callable[[], ToolCallRecord]) -> object:
    """``CallRunner`` for the agent driver: the call as a task run of its own (its state is the call's)."""
    return agent_tool_call(name, quote(work), return_state=True)
