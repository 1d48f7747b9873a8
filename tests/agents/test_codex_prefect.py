"""An agent step in a whole run on a real Prefect server: each of codex's tool calls a task run under the agent
step's task run, asks as paused approval flow runs answered through the public API, approve-for-session."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from codex_orchestrator.agents.scripted_model import ScriptedModel
from codex_orchestrator.approvals import ApprovalRequest, Decision
from codex_orchestrator.records.manifest import ApprovalRecord
from tests.agents.helpers import CALC, MUL_PATCH
from tests.conftest import validate_events, validate_manifest
from tests.prefect_api import read_final_task_run

pytestmark = [pytest.mark.prefect, pytest.mark.sandbox]

ANSWER = "python3 -c 'print(6 * 7)'"
DENIED = "python3 -c 'print(1)'"
SCRIPT: list[Any] = [
    [{"exec": "cat calc.py"}],
    [{"patch": MUL_PATCH}],
    [{"exec": ANSWER}],
    [{"exec": ANSWER}],  # approved for the session: codex does not ask again
    [{"exec": DENIED}],
    [{"message": "multiply added"}],
]


def agent_request(workspace: Path, model: ScriptedModel, **extra: Any) -> dict[str, Any]:
    return {
        "task": "agent-run",
        "workspace": str(workspace),
        "approval_policy": "on-request",
        "profile": ["read", "edit"],
        "steps": [
            {
                "name": "implement",
                "kind": "agent",
                "agent": "codex",
                "prompt": "add a multiply function",
                "codex_config": model.provider_overrides(),
                "timeout_s": 300,
            }
        ],
        **extra,
    }


def test_an_agent_step_under_prefect(prefect_server: str, tmp_path: Path) -> None:
    from flows.runner import AnswerVia, run_request
    from tasks.approval import answer_approval

    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text(CALC)
    asked: list[str] = []

    def reviewer(record: ApprovalRecord, request: ApprovalRequest, where: AnswerVia) -> None:
        asked.append(request.command)
        decision = Decision.APPROVE_FOR_SESSION if request.command == ANSWER else Decision.DENY
        assert record.flow_run_id is not None
        answer_approval(
            record.flow_run_id, decision, reason="scripted", answered_by="sdk", api_url=where.api_url
        )

    with ScriptedModel(SCRIPT) as model:
        request_file = tmp_path / "request.json"
        request_file.write_text(json.dumps(agent_request(workspace, model)))
        run_id = f"t-{uuid.uuid4().hex[:8]}"
        code, manifest_path = run_request(request_file, run_id=run_id, reviewer=reviewer, say=lambda _t: None)
        outputs = model.function_call_outputs()
    data = validate_manifest(manifest_path)
    validate_events(manifest_path.parent / "events.jsonl")
    assert code == 0 and data["status"] == "succeeded", data.get("error")
    assert asked == [ANSWER, DENIED]
    step = next(c for c in data["tool_calls"] if c["kind"] == "agent")
    assert step["status"] == "succeeded"
    own = [c for c in data["tool_calls"] if c.get("parent_call_id") == step["id"]]
    assert [(c["command"], c["status"], c["approval_source"]) for c in own] == [
        ("cat calc.py", "succeeded", "not-required"),
        ("apply patch: calc.py", "succeeded", "not-required"),
        (ANSWER, "succeeded", "human"),
        (ANSWER, "succeeded", "cache"),
        (DENIED, "denied", "human"),
    ]
    assert "42" in outputs["call_2_0"] and "42" in outputs["call_3_0"]
    assert "def mul" in (workspace / "calc.py").read_text()
    _check_task_runs(step, own)


def _check_task_runs(step: dict[str, Any], own: list[dict[str, Any]]) -> None:
    """Each agent call ran in a task run of its own, named after its command, under the agent step's."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # as the UI reads them: once the recorder's batch is written
        parent = read_final_task_run(client, uuid.UUID(step["prefect_task_run_id"]))
        for call in own:
            task_run = read_final_task_run(client, uuid.UUID(call["prefect_task_run_id"]))
            assert task_run.name == call["command"][:80]
            assert task_run.flow_run_id == parent.flow_run_id
            parents = [str(p.id) for p in task_run.task_inputs.get("__parents__", [])]
            assert parents == [step["prefect_task_run_id"]], task_run.task_inputs
            expected = "COMPLETED" if call["status"] == "succeeded" else "FAILED"
            assert task_run.state is not None and task_run.state.type.value == expected
