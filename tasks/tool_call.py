"""One tool call through the ToolOrchestrator gate, as a Prefect task (never cached: tool calls have effects).

The task takes the call by value (``CallInput``) and can run in any process: a thread of the flow, a Dask
worker, a task worker. Approvals it needs pause their own ``approval`` flow runs (tasks/approval.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from prefect import State, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext, TaskRunContext
from prefect.states import Completed, Failed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from codex_orchestrator.call_claim import follow, try_claim
from codex_orchestrator.exec.ssh import SshTarget
from codex_orchestrator.execute import CallInput, execute_call, instance_limit_name
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.records.store import RunStore
from tasks.agent_call import run_as_task
from tasks.approval import PrefectPauseApprover


def by_value(call: CallInput, runner: TaskRunner[Any] | None = None) -> CallInput | quote:
    """``call`` as a task parameter that Prefect hands over as it is: it holds no futures or states, so walking
    it for task inputs and resolving it again (~1.5 ms a call, measured) finds nothing. Only for a runner of
    threads in this process (``runner``, default: the flow's): ``quote`` is a tuple, which Dask would take
    apart, and ``apply_async`` to task workers takes the plain model."""
    if runner is None:
        context = FlowRunContext.get()
        runner = context.task_runner if context is not None else None
    if runner is None or isinstance(runner, ThreadPoolTaskRunner):
        return quote(call)
    return call


def load_ssh_block(name: str) -> SshTarget:
    """An ``SshHost`` block saved in Prefect, as the core's ``SshTarget`` (the key is read here, not passed)."""
    from blocks.ssh_host import SshHost

    return cast(SshHost, SshHost.load(name)).to_target()


@contextmanager
def _instance_slot(call: CallInput) -> Iterator[None]:
    """Hold one slot of the instance's global concurrency limit: runs sharing a host share its limit."""
    if not call.hold_instance_slot:
        yield
        return
    with concurrency(instance_limit_name(call.instance.name), occupy=1, strict=True):
        yield


def _claimed_elsewhere(call: CallInput) -> ToolCallRecord | None:
    """A call handed to task workers runs once: claim it, or follow the live process that claimed it to its
    final record (None: this process holds the claim and runs the call)."""
    if call.claim_scope is None:
        return None
    store = RunStore(call.run)
    while not try_claim(store, call.call_id, call.claim_scope):
        record = follow(store, call.call_id, call.claim_scope)
        if record is not None:
            return record
    return None


@task(
    name="tool-call",
    task_run_name="{call.milestone}:{call.step.name}",
    cache_policy=NO_CACHE,
    persist_result=False,
)
def tool_call(call: CallInput) -> State[str]:
    task_ctx = TaskRunContext.get()
    task_run_id = str(task_ctx.task_run.id) if task_ctx is not None else None
    record = _claimed_elsewhere(call)
    if record is None:
        record = execute_call(
            call,
            PrefectPauseApprover(),
            resolve_block=load_ssh_block,
            prefect_task_run_id=task_run_id,
            attempt_slot=lambda: _instance_slot(call),
            agent_call_runner=run_as_task,
        )
    summary = (
        f"{record.id} {record.step}: {record.status} (exit {record.exit_code}, {len(record.attempts)} "
        f"attempt(s), approval {record.approval_source}, sandbox {record.sandbox.state})"
    )
    # The summary (every part of it already redacted) is the state's message, which Prefect logs once as
    # "Finished in state ...": a log line of our own would repeat it at the price of another API log a call.
    if record.status == "succeeded":
        return Completed(message=summary, data=record.status)
    return Failed(message=f"{summary}: {record.error or ''}", data=record.status)
