"""Where users look, end to end: `run --json` of a request with a real codex agent step (scripted model, real
Prefect server, real sandbox) prints the agent's events, the manifest summarises the step, and the Prefect
artifacts hold its transcript and its tool calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from codex_orchestrator.agents.scripted_model import ScriptedModel
from tests.conftest import validate_event_lines, validate_manifest
from tests.test_cli import cli

pytestmark = pytest.mark.prefect
PATCH = (
    "*** Begin Patch\n*** Update File: calc.py\n@@\n def subtract(a: float, b: float) -> float:\n"
    "     return a - b\n+\n+\n+def multiply(a: float, b: float) -> float:\n+    return a * b\n*** End Patch"
)
SCRIPT: list[Any] = [
    {
        "items": [{"reasoning": "look first"}, {"exec": "cat calc.py"}],
        "usage": {"input_tokens": 50, "output_tokens": 5},
    },
    [{"patch": PATCH}],
    [{"exec": "curl -s http://127.0.0.1:9/"}],  # network, which the agent's sandbox has not: declined
    {"items": [{"message": "Added multiply."}], "usage": {"input_tokens": 80, "output_tokens": 8}},
]


def _artifact(api: str, key: str) -> Any:
    response = httpx.post(
        f"{api}/artifacts/filter",
        json={"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1},
        timeout=30,
    )
    response.raise_for_status()
    (artifact,) = response.json()
    return artifact["data"]


def test_run_json_the_manifest_and_the_artifacts_show_the_agents_work(
    prefect_server: str, workspace: Path, tmp_path: Path
) -> None:
    with ScriptedModel(SCRIPT) as model:
        request = {
            "task": "agent-view",
            "workspace": str(workspace),
            "approval_policy": "on-request",
            "profile": ["read", "edit", "run"],
            "steps": [
                {
                    "name": "implement",
                    "kind": "agent",
                    "agent": "codex",
                    "prompt": "add a multiply function",
                    "codex_config": model.provider_overrides(),
                }
            ],
        }
        path = tmp_path / "request.yaml"
        path.write_text(yaml.safe_dump(request))
        done = cli("run", str(path), "--json", env={"PREFECT_API_URL": prefect_server}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    events = validate_event_lines(done.stdout.splitlines())  # each line valid against the events schema
    agent = [e for e in events if e["type"].startswith("agent.")]
    kinds = [e["type"] for e in agent if e["type"] != "agent.tokens"]
    assert kinds == [
        "agent.started",
        "agent.turn.started",
        "agent.reasoning",
        "agent.command",
        "agent.file_change",
        "agent.command",
        "agent.message",
        "agent.turn.finished",
        "agent.finished",
    ]
    declined = [e for e in agent if e["type"] == "agent.command"][1]
    assert declined["command"] == "curl -s http://127.0.0.1:9/" and declined["status"] == "declined"

    (manifest_path,) = workspace.glob(".runs/agent-view/cli/*/manifest.json")
    manifest = validate_manifest(manifest_path)
    (summary,) = manifest["agents"]
    assert summary["agent_version"] == "0.163.0"
    assert manifest["diagnostics"]["tools"]["agent:implement"].startswith("codex-cli 0.163.0")
    assert summary["status"] == "completed" and summary["agent"] == "codex" and summary["turns"] == 1
    assert summary["tool_calls_by_status"] == {"denied": 1, "succeeded": 2}
    usage = [e["last"]["total"] for e in agent if e["type"] == "agent.tokens"]
    assert len(usage) == len(SCRIPT) and summary["tokens"]["total"] == sum(usage)  # every response's usage
    assert summary["final_message"] == "Added multiply."
    refused = summary["tool_calls"][2]
    assert refused["status"] == "denied" and "needs network" in (refused["error"] or "")

    transcript = _artifact(prefect_server, "agent-view-agent-implement")
    assert "## Turn 1" in transcript and "+def multiply(a: float, b: float) -> float:" in transcript
    assert "**$ `curl -s http://127.0.0.1:9/`** — **declined**" in transcript
    table = json.loads(_artifact(prefect_server, "agent-view-agent-implement-tool-calls"))
    assert [(row["status"], row["kind"]) for row in table] == [
        ("succeeded", "shell"),
        ("succeeded", "edit"),
        ("denied", "shell"),
    ]
