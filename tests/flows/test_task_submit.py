"""flows/task_submit.py: what a batch of calls hands to task workers (a real Prefect server; the task-worker
topology itself runs in tests/deploy/test_workers.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State
from prefect.states import Completed
from prefect.task_runs import TaskRunWaiter
from prefect.utilities.asyncutils import run_coro_as_sync
from prefect.utilities.engine import emit_task_run_state_change_event

from flows.task_submit import Deferred, WorkerFuture, observed_end, submit_deferred, when_done, worker_context
from tests.conftest import python_child

CLI = Path(sys.executable).parent / "codex-orchestrator"
# A bound on waits that only a hang reaches (the callback path takes milliseconds).
WAIT_S = 120.0


def test_the_context_a_worker_gets_leaves_out_the_flows_parameters_and_settings(prefect_server: str) -> None:
    steps = [{"name": f"step-{i}", "command": "x" * 1000} for i in range(50)]

    @flow(name="batch-context")
    def milestone(steps: list[dict[str, Any]]) -> dict[str, Any]:
        return worker_context()

    context = milestone(steps)
    flow_run = context["flow_run_context"]
    assert flow_run["flow_run"]["name"]  # what attaches a call to its flow run is there
    assert "parameters" not in flow_run  # not every step again with each call
    assert "settings_context" not in context  # the worker's own settings, not this process's
    assert "x" * 1000 not in repr(context)


def test_task_worker_refuses_a_bad_limit_in_one_line() -> None:
    done = subprocess.run([str(CLI), "task-worker", "--limit", "-1"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == (
        "codex-orchestrator task-worker: error: argument --limit: --limit must be a whole number >= 0, not '-1'"
    )


def test_a_calls_end_event_brings_its_state_before_the_wake_up(prefect_server: str) -> None:
    """The step loop reads the state right after the wake-up; the API's copy of the task run is written from
    the end event a moment later, so the state must come from the event (else the loop waited for its poll)."""

    @task(name="noop-call", persist_result=False)
    def noop() -> None:
        return None

    @flow(name="end-event")
    def watch() -> tuple[bool, str | None]:
        [future] = submit_deferred(noop, [Deferred({})])
        assert future.known_final_state is None
        seen: list[State[Any] | None] = []
        woke = threading.Event()

        def wake() -> None:
            seen.append(future.known_final_state)
            woke.set()

        when_done(future, wake)
        with get_client(sync_client=True) as client:
            task_run = client.read_task_run(future.task_run_id)
        # What a task worker's engine does at the call's end: the event first; the API's copy follows it.
        emit_task_run_state_change_event(
            task_run=task_run, initial_state=task_run.state, validated_state=Completed()
        )
        assert woke.wait(120), "no end event reached the waiter"
        state = seen[0]
        return future.settle(), state.type.value if state is not None else None

    settled, state_type = watch()
    assert state_type == "COMPLETED"
    assert settled


def _end(future: WorkerFuture) -> None:
    """End the call's task run as a task worker's engine does (the end event), and wait until this process's
    waiter has seen it: from then on the call has ended before any callback registered for it."""
    with get_client(sync_client=True) as client:
        task_run = client.read_task_run(future.task_run_id)
    emit_task_run_state_change_event(
        task_run=task_run, initial_state=task_run.state, validated_state=Completed()
    )
    state = run_coro_as_sync(TaskRunWaiter.wait_for_task_run(future.task_run_id, timeout=WAIT_S))
    assert state is not None, "the end event never reached the waiter"


def _register_off_thread(future: WorkerFuture) -> tuple[threading.Thread, threading.Event]:
    """``when_done`` in a thread of its own, so that a deadlock fails the test instead of hanging the suite."""
    woke = threading.Event()
    states: list[State[Any] | None] = []

    def register() -> None:
        when_done(future, lambda: (states.append(future.known_final_state), woke.set()))

    thread = threading.Thread(target=register, daemon=True)
    thread.start()
    return thread, woke


def test_a_call_that_ended_before_its_callback_is_registered_wakes_the_loop(prefect_server: str) -> None:
    """Prefect's ``add_done_callback`` calls back at once, holding the waiter's lock, for a run already ended;
    a callback that then waited for that lock (our settle did) hung the run forever (issue 20). In a process of
    its own: a deadlock there holds the waiter's lock for good, which would hang this one."""
    code, out, err = python_child(
        "from tests.flows.test_task_submit import ended_early; ended_early()",
        timeout_s=WAIT_S,
        env={"PREFECT_API_URL": prefect_server},
    )
    assert code == 0, err[-3000:]
    assert out.split() == ["returned", "woke", "COMPLETED"], (out, err[-3000:])


def ended_early() -> None:
    """The child's part: a call that has ended (its end event seen) before ``when_done`` registers for it."""

    @task(name="ended-early", persist_result=False)
    def noop() -> None:
        return None

    @flow(name="ended-before-registration")
    def watch() -> list[str]:
        [future] = submit_deferred(noop, [Deferred({})])
        _end(future)
        thread, woke = _register_off_thread(future)
        thread.join(WAIT_S / 2)
        if thread.is_alive():
            print("deadlocked", flush=True)
            os._exit(3)  # the waiter's lock is held for good: nothing else in this process can end
        state = future.known_final_state
        return ["returned", "woke" if woke.is_set() else "slept", state.type.value if state else "no-state"]

    print(*watch(), flush=True)


def test_an_end_that_slips_between_check_and_registration_still_wakes_the_loop(
    prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``add_done_callback`` checks for an end, then registers: an end event consumed in between never calls the
    callback. Here the registration happens exactly then (after the event was consumed, without the check)."""

    def register_late(task_run_id: UUID, callback: Callable[[], None]) -> None:
        waiter = TaskRunWaiter.instance()
        with waiter._completion_events_lock:
            waiter._completion_callbacks[task_run_id] = callback

    @task(name="ended-in-between", persist_result=False)
    def noop() -> None:
        return None

    @flow(name="ended-between-check-and-registration")
    def watch() -> tuple[bool, str | None]:
        [future] = submit_deferred(noop, [Deferred({})])
        _end(future)
        monkeypatch.setattr(TaskRunWaiter, "add_done_callback", register_late)
        thread, woke = _register_off_thread(future)
        thread.join(WAIT_S)
        woken = woke.wait(WAIT_S)
        state = future.known_final_state
        return woken, state.type.value if state is not None else None

    woke, state_type = watch()
    assert woke, "the wake-up was lost"
    assert state_type == "COMPLETED"


def test_the_waiter_internals_the_settle_reads_are_there(prefect_server: str) -> None:
    """``observed_end`` reads the waiter's cache under its lock (Prefect has no public read that never waits):
    a Prefect upgrade that renames them fails here, not in a run."""
    waiter = TaskRunWaiter.instance()
    assert isinstance(waiter._observed_completed_task_runs_lock, type(threading.Lock()))
    assert observed_end(uuid4()) is None
