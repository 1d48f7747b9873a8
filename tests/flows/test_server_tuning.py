"""Under the product's server settings (flows/server_tuning.py: task-run states and events written in batches),
the API still shows what the UI shows of a run: every task run with its final state, and an approval's pause."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from codex_orchestrator.approvals import Decision
from flows.server_tuning import EVENT_PERSISTER_BATCH, FLUSH_INTERVAL_S, TASK_RUN_RECORDER_BATCH
from tests.flows.test_autonomy import NETWORK_STEP, _answer_from_code, _request, _run
from tests.prefect_api import read_final_task_run

pytestmark = pytest.mark.prefect
CALLS = 12


def test_the_suites_server_runs_with_the_tuned_settings(prefect_server: str) -> None:
    services = httpx.get(f"{prefect_server}/admin/settings", timeout=60).json()["server"]["services"]
    assert services["task_run_recorder"]["batch_size"] == TASK_RUN_RECORDER_BATCH
    assert services["task_run_recorder"]["flush_interval"] == FLUSH_INTERVAL_S
    assert services["event_persister"]["batch_size"] == EVENT_PERSISTER_BATCH
    assert services["event_persister"]["flush_interval"] == FLUSH_INTERVAL_S


def test_every_task_run_its_final_state_and_the_approval_pause_reach_the_api(
    prefect_server: str, workspace: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    # Calls at once (more than fit one flush of the old batch of 1), one that fails, one behind an approval.
    steps: list[dict[str, Any]] = [{"name": f"call-{i}", "command": "true"} for i in range(CALLS)]
    steps += [{"name": "fails", "command": "false"}, NETWORK_STEP]
    request = _request(workspace, steps, max_parallel=4, on_failure="continue", guardrails=[])
    code, data, _ = _run(request, _answer_from_code(Decision.APPROVE))
    assert code == 1  # the failing call fails the run; every other call ran
    expected = {"succeeded": StateType.COMPLETED, "failed": StateType.FAILED}
    calls = data["tool_calls"]
    assert len(calls) == CALLS + 2 and {c["status"] for c in calls} == {"succeeded", "failed"}
    with get_client(sync_client=True) as client:
        for call in calls:
            task_run = read_final_task_run(client, uuid.UUID(call["prefect_task_run_id"]))
            assert task_run.name == f"{call['milestone']}:{call['step']}"
            assert task_run.state.type == expected[call["status"]], call["id"]
        (approval,) = data["approvals"]
        assert approval["outcome"] == "approved"
        states = client.read_flow_run_states(uuid.UUID(approval["flow_run_id"]))
        assert StateType.PAUSED in {s.type for s in states}
        assert states[-1].type == StateType.COMPLETED
