"""Running an agent step for the tests: the real codex binary, the scripted model, the real sandbox."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_orchestrator.agents.scripted_model import ScriptedModel
from codex_orchestrator.approvals import Approver, NoApprover
from codex_orchestrator.execute import CallInput, GateSettings, execute_call
from codex_orchestrator.policy import ApprovalPolicy, Capability
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.request import Step
from codex_orchestrator.run import RunOwner

CALC = "def add(a, b):\n    return a + b\n"
MUL_PATCH = (
    "*** Begin Patch\n*** Update File: calc.py\n@@\n def add(a, b):\n     return a + b\n"
    "+\n+def mul(a, b):\n+    return a * b\n*** End Patch"
)
STEP_CALL_ID = "exec.implement"


@dataclass
class AgentRun:
    record: ToolCallRecord
    calls: list[dict[str, Any]]  # the agent's own tool calls, in the order codex asked
    events: list[dict[str, Any]]
    workspace: Path
    ref: RunRef


def new_workspace(tmp_path: Path) -> tuple[Path, RunRef]:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text(CALC)
    ref = RunRef(run_id="run-1", task_id="agent", runs_dir=str(workspace / ".runs"), workspace=str(workspace))
    RunOwner.create(ref, request={}).close()
    return workspace, ref


def agent_call_input(
    ref: RunRef,
    model: ScriptedModel,
    *,
    policy: ApprovalPolicy = ApprovalPolicy.ON_REQUEST,
    profile: tuple[Capability, ...] = (Capability.READ, Capability.EDIT, Capability.RUN),
    secret_env: list[str] | None = None,
    **step: Any,
) -> CallInput:
    fields: dict[str, Any] = {"prompt": "add a multiply function", "timeout_s": 120, **step}
    return CallInput(
        run=ref,
        call_id=STEP_CALL_ID,
        milestone="exec",
        step=Step(
            name="implement",
            kind="agent",
            agent="codex",
            codex_config={**model.provider_overrides(), **fields.pop("codex_config", {})},
            **fields,
        ),
        gate=GateSettings(policy=policy, profile=list(profile)),
        secret_env=secret_env or [],
    )


def run_agent(
    tmp_path: Path,
    script: list[Any],
    *,
    approver: Approver | None = None,
    workspace: tuple[Path, RunRef] | None = None,
    **options: Any,
) -> tuple[AgentRun, ScriptedModel]:
    ws, ref = workspace or new_workspace(tmp_path)
    with ScriptedModel(script) as model:
        call = agent_call_input(ref, model, **options)
        record = execute_call(call, approver or NoApprover("nobody is asked in this test"))
    return read_run(ws, ref, record), model


def read_run(workspace: Path, ref: RunRef, record: ToolCallRecord) -> AgentRun:
    run_dir = Path(ref.runs_dir) / ref.task_id / "cli" / ref.run_id
    calls = [json.loads(p.read_text()) for p in sorted((run_dir / "calls").glob("*.json"))]
    own = sorted((c for c in calls if c.get("parent_call_id") == STEP_CALL_ID), key=lambda c: c["order"])
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return AgentRun(record=record, calls=own, events=events, workspace=workspace, ref=ref)
