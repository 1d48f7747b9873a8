"""flows/task_submit.py: what a batch of calls hands to task workers (a real Prefect server; the task-worker
topology itself runs in tests/deploy/test_workers.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import flow

from flows.task_submit import worker_context

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
