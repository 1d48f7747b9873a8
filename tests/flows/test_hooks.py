"""The autonomy flow's Prefect state hooks mark the run in its records at once when Prefect says it crashed."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import uuid4

from prefect.client.schemas.objects import FlowRun
from prefect.states import Cancelled, Crashed

from codex_orchestrator.request import parse_request
from flows.autonomy import _mark_interrupted, autonomy, open_run, run_ref


def _open(workspace: Path, run_id: str) -> Path:
    request = parse_request(
        {"task": "hooked", "workspace": str(workspace), "steps": [{"name": "s", "command": "ls"}]}
    )
    path = workspace.parent / f"{run_id}.json"
    path.write_text(request.model_dump_json())
    open_run(request, run_ref(request, run_id, None), resume=False).close()  # opened, never finished
    return path


def _flow_run(request_file: Path, run_id: str) -> FlowRun:
    return FlowRun(
        id=uuid4(), flow_id=uuid4(), parameters={"request_path": str(request_file), "run_id": run_id}
    )


def test_a_crashed_flow_run_marks_the_run_interrupted(workspace: Path) -> None:
    request_file = _open(workspace, "crashed-run")
    _mark_interrupted(autonomy, _flow_run(request_file, "crashed-run"), Crashed(message="worker lost"))
    data = json.loads((workspace / ".runs/hooked/cli/crashed-run/manifest.json").read_text())
    assert data["status"] == "interrupted" and data["exit_code"] == 130
    assert "worker lost" in data["error"]


def test_a_cancelled_flow_run_marks_the_run_cancelled(workspace: Path) -> None:
    request_file = _open(workspace, "cancelled-run")
    _mark_interrupted(autonomy, _flow_run(request_file, "cancelled-run"), Cancelled(message="from the UI"))
    data = json.loads((workspace / ".runs/hooked/cli/cancelled-run/manifest.json").read_text())
    assert data["status"] == "cancelled" and "from the UI" in data["error"]
