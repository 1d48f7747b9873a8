"""Hand tool calls to Prefect task workers in batches, and learn of their ends without a thread each.

``Task.apply_async`` does, per call, on Prefect's one run-sync event-loop thread: build a new API client (~40 ms
of CPU here: an httpx client and its TLS context), serialise the flow's whole context (~25 ms: the flow run with
its parameters, the settings), store the parameters, create the task run (~25 ms of API round trip). With 64
calls ready together that thread, not the workers, set the pace: ~10 calls a second whatever the number of
workers (measured by bench/scale_out.py, see docs/scale-out.md). Here a batch of calls that became ready
together shares one client, one serialised context and one result store, and their task runs are created
concurrently; each call still gets its own task run, its own stored parameters and its ``Scheduled`` event,
exactly as ``apply_async`` makes them (this follows ``Task.create_run(deferred=True)`` of Prefect 3.9, which a
task worker reads back with ``read_parameters``).

Ends are learnt from Prefect's ``TaskRunWaiter`` (one subscription to task-run events per process) through its
``add_done_callback``, instead of a thread per call that reads the task run and then waits.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID, uuid4

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext, TagsContext, serialize_context
from prefect.futures import PrefectDistributedFuture, PrefectFuture
from prefect.results import ResultStore, get_or_create_default_task_scheduling_storage
from prefect.states import Scheduled
from prefect.task_runs import TaskRunWaiter
from prefect.task_worker import store_parameters
from prefect.tasks import Task
from prefect.utilities.asyncutils import run_coro_as_sync
from prefect.utilities.engine import collect_task_run_inputs_sync, emit_task_run_state_change_event

# Task runs created at once in a batch: enough to keep the API busy, few enough not to queue up in it.
CONCURRENT_CREATES = 8


@dataclass(frozen=True)
class Deferred:
    """One call to hand out: the task's parameters by name and the futures it waits for."""

    parameters: dict[str, Any]
    wait_for: Sequence[PrefectFuture[Any]] = field(default_factory=tuple)


class WorkerFuture(PrefectDistributedFuture[Any]):
    """A call on a task worker. Its final state comes with the end event (``when_done``); failing that,
    ``settle`` reads its task run with the client of the thread asking (the flow's: ``wait`` would build a
    client of its own on Prefect's loop for every read). Once final, nothing reads it again."""

    def ended(self, state: State[Any]) -> None:
        self._final_state = state

    @property
    def known_final_state(self) -> State[Any] | None:
        """The final state if already known here (no API read)."""
        return self._final_state

    def settle(self) -> bool:
        """Whether the call has ended (one API read until it has, unless its end event brought the state)."""
        if self._final_state is None:
            state = observed_end(self.task_run_id) or self.state  # the end event's, else one API read
            if not state.is_final():
                return False
            self._final_state = state
        return True


def submit_deferred(task: Task[Any, Any], calls: Sequence[Deferred]) -> list[WorkerFuture]:
    """Create a deferred (task-worker) run of ``task`` for each call, in order; from the flow's thread."""
    if not calls:
        return []
    flow_run_context = FlowRunContext.get()
    if flow_run_context is None or flow_run_context.flow_run is None:
        raise RuntimeError("calls are handed to task workers from inside a flow run")
    TaskRunWaiter.instance()  # listening before the first run exists: no end can be missed
    context = worker_context()  # the same for every call of the batch
    ids = run_coro_as_sync(_create_all(task, calls, flow_run_context, context))
    assert ids is not None
    return [WorkerFuture(task_run_id=task_run_id) for task_run_id in ids]


def worker_context() -> dict[str, Any]:
    """The flow's context as a task worker needs it to attach a call to this flow run: the flow run, the flow,
    tags, the result store. Not the flow's parameters: a call carries what it needs by value, and they were
    the whole milestone (every step) stored again with each of its calls. Not this process's settings: a
    worker has its own (API URL, paths on its machine), and rebuilding them cost the worker per call."""
    context = serialize_context()
    context.pop("settings_context", None)
    flow_run_context = context.get("flow_run_context")
    if isinstance(flow_run_context, dict):
        flow_run_context.pop("parameters", None)
        flow_run = flow_run_context.get("flow_run")
        if isinstance(flow_run, dict) and "parameters" in flow_run:
            flow_run["parameters"] = {}  # the API's copy of the run, parameters and all
    return context


def when_done(future: WorkerFuture, callback: Callable[[], None]) -> None:
    """Call ``callback`` once, when the task run has reached a final state, with the state from its end event
    already in ``future`` (the API's copy of the task run is written from that event a moment later, so a read
    right after the wake-up could still see it running). ``callback`` must not block: it runs on Prefect's loop
    thread or in the caller's.

    Prefect's ``TaskRunWaiter.add_done_callback`` calls back *while holding its lock* when the run has already
    ended, and its event consumer calls back while holding another; nothing here waits under either. It also
    loses the wake-up of an end that arrives between its check and its registration, so the cache is read once
    more after registering."""
    fire = _once(future, callback)
    registering = threading.get_ident()

    def on_end() -> None:
        if registering == threading.get_ident():
            return  # called at once, under the waiter's lock: settled below, after the lock is let go
        # The event consumer, on Prefect's loop thread, under the waiter's other lock: settle after it.
        asyncio.get_running_loop().call_soon(fire)

    TaskRunWaiter.add_done_callback(future.task_run_id, on_end)
    registering = 0  # from here on a call of on_end is the consumer's
    if observed_end(future.task_run_id) is not None:
        fire()  # ended before the callback was in place: add_done_callback called at once, or lost the race


def observed_end(task_run_id: UUID) -> State[Any] | None:
    """The final state of a task run whose end event this process's ``TaskRunWaiter`` has seen, else None;
    never waits beyond the waiter's lock, which no one holds for longer than a dictionary look-up."""
    waiter = TaskRunWaiter.instance()
    with waiter._observed_completed_task_runs_lock:
        return waiter._observed_completed_task_runs.get(task_run_id)


def _once(future: WorkerFuture, callback: Callable[[], None]) -> Callable[[], None]:
    """``callback`` for the first caller only, with the end event's state put into ``future`` first."""
    token = threading.Lock()

    def fire() -> None:
        if not token.acquire(blocking=False):
            return
        waiter = TaskRunWaiter.instance()
        with (
            waiter._completion_events_lock
        ):  # Prefect never drops a called-back entry: a long worker would grow
            waiter._completion_callbacks.pop(future.task_run_id, None)
        state = observed_end(future.task_run_id)
        if state is not None and state.is_final():
            future.ended(state)
        callback()

    return fire


async def _create_all(
    task: Task[Any, Any],
    calls: Sequence[Deferred],
    flow_run_context: FlowRunContext,
    context: dict[str, Any],
) -> list[UUID]:
    task.persist_result = True  # what apply_async sets: the worker stores the call's final state
    store = await ResultStore(
        result_storage=await get_or_create_default_task_scheduling_storage()
    ).aupdate_for_task(task)
    tags = TagsContext.get().current_tags
    limit = asyncio.Semaphore(CONCURRENT_CREATES)
    async with get_client() as client:

        async def create(call: Deferred, dynamic_key: str) -> UUID:
            async with limit:
                state: State[Any] = Scheduled()
                state.state_details.deferred = True
                parameters_id = uuid4()
                state.state_details.task_parameters_id = parameters_id
                data: dict[str, Any] = {"context": context, "parameters": call.parameters}
                if call.wait_for:
                    data["wait_for"] = list(call.wait_for)
                await store_parameters(store, parameters_id, data)
                task_inputs = {k: collect_task_run_inputs_sync(v) for k, v in call.parameters.items()}
                if call.wait_for:
                    task_inputs["wait_for"] = collect_task_run_inputs_sync(list(call.wait_for))
                task_run = await client.create_task_run(
                    task=task,
                    name=f"{task.name}-{dynamic_key}",
                    flow_run_id=flow_run_context.flow_run.id if flow_run_context.flow_run else None,
                    dynamic_key=dynamic_key,
                    state=state,
                    task_inputs=cast(Any, task_inputs),  # sets, as Task.create_run passes them
                    extra_tags=tags,
                )
                assert task_run.state is not None
                emit_task_run_state_change_event(
                    task_run=task_run, initial_state=None, validated_state=task_run.state
                )
                return task_run.id

        # Keys are taken in order here, as apply_async would one call after another.
        keys = [str(_dynamic_key(flow_run_context, task)) for _ in calls]
        return list(await asyncio.gather(*(create(c, k) for c, k in zip(calls, keys, strict=True))))


def _dynamic_key(flow_run_context: FlowRunContext, task: Task[Any, Any]) -> int | str:
    from prefect._internal.engine import dynamic_key_for_task_run

    return dynamic_key_for_task_run(context=flow_run_context, task=task)
