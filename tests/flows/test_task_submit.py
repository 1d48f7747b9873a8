"""flows/task_submit.py: what a batch of calls hands to task workers (a real Prefect server; the task-worker
topology itself runs in tests/deploy/test_workers.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State
from prefect.states import Completed
from prefect.utilities.engine import emit_task_run_state_change_event

from flows.task_submit import Deferred, submit_deferred, when_done, worker_context

CLI = Path(sys.executable).parent / "codex-orchestrator"


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
