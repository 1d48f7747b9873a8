"""What a new user meets: a path escape is a recorded refusal, a pause says how to answer it, the deployment
form shows the request's real defaults."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterLevel
from prefect.client.schemas.sorting import LogSort
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.conftest import ROOT, validate_manifest

pytestmark = pytest.mark.prefect
CLI = [sys.executable, "-m", "codex_orchestrator.cli"]


def test_an_escape_through_a_link_an_earlier_step_made_is_a_recorded_refusal(
    prefect_server: str, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    request = tmp_path / "escape.yaml"
    request.write_text(
        yaml.safe_dump(
            {
                "task": "escape",
                "workspace": str(workspace),
                "profile": ["read", "edit", "run"],
                "sandbox": "none",
                "steps": [
                    {"name": "link", "command": f"ln -s {outside} escape"},
                    {
                        "name": "write",
                        "kind": "edit",
                        "path": "escape/x.txt",
                        "content": "x",
                        "needs": ["link"],
                    },
                ],
            }
        )
    )
    done = subprocess.run(
        [*CLI, "run", str(request), "--run-id", "escape-run", "--no-prompt"],
        cwd=ROOT,
        env={**os.environ, "PREFECT_API_URL": prefect_server},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    data = validate_manifest(workspace / ".runs/escape/cli/escape-run/manifest.json")
    write = next(c for c in data["tool_calls"] if c["step"] == "write")
    assert write["status"] == "denied" and "resolves outside the workspace" in write["error"]
    assert data["status"] == "denied" and not (outside / "x.txt").exists()
    assert [line for line in done.stderr.splitlines() if "resolves outside the workspace" in line]


def test_a_pause_says_what_waits_and_how_to_answer(
    prefect_server: str, workspace: Path, tmp_path: Path
) -> None:
    request = tmp_path / "pause.yaml"
    request.write_text(
        yaml.safe_dump(
            {
                "task": "pause",
                "workspace": str(workspace),
                "steps": [{"name": "publish", "command": "true", "capabilities": ["network"]}],
            }
        )
    )
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    proc = subprocess.Popen(
        [*CLI, "run", str(request), "--run-id", "pause-run", "--no-prompt"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        if "or in the Prefect UI:" in line:
            break
    text = "".join(seen)
    assert "waiting for approval" in text and "step 'publish'" in text
    assert "why: needs network" in text
    assert "codex-orchestrator approve pause-run --approval" in text
    assert "/runs/flow-run/" in text
    answer = subprocess.run(
        [*CLI, "approve", "pause-run", "--runs-dir", str(workspace / ".runs")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode == 0, answer.stderr
    _, rest = proc.communicate(timeout=300)
    assert proc.returncode == 0
    # Said once on the terminal (issue 21, item 8); Prefect keeps its own copy for the UI, in the pause's logs.
    assert (text + rest).count("waiting for approval") == 1, text + rest
    data = validate_manifest(workspace / ".runs" / "pause" / "cli" / "pause-run" / "manifest.json")
    (approval,) = data["approvals"]
    with temporary_settings({PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as client:
        logs = client.read_logs(  # the newest: the server serves the module's other runs too
            LogFilter(level=LogFilterLevel(ge_=logging.INFO)), limit=200, sort=LogSort.TIMESTAMP_DESC
        )
    notice = f"waiting for approval {approval['approval_id']} of run pause-run"
    assert [log for log in logs if log.message.startswith(notice)]


def test_the_deployment_form_shows_the_request_defaults() -> None:
    from flows.autonomy import autonomy

    props = autonomy.parameters.model_dump()["definitions"]["RunRequest"]["properties"]
    assert props["profile"]["default"] == ["read"]
    assert props["retry"]["default"]["max_attempts"] == 3
    assert props["max_parallel"]["default"] == 4 and props["on_failure"]["default"] == "stop"
