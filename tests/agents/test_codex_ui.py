"""What a person meets of an agent step: the patch codex asks to apply, paused in the Prefect UI with its diff,
answered in the Resume form (headless Chromium, as tests/test_ui_artifacts.py does); and Ctrl-C's sibling SIGTERM
ending a `run` whose agent is mid-command, codex and all it started gone with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from codex_orchestrator.agents.scripted_model import ScriptedModel
from tests.agents.helpers import CALC, MUL_PATCH
from tests.agents.test_codex_prefect import agent_request
from tests.conftest import ROOT, validate_manifest
from tests.test_cli import CLI as CLI_ARGV
from tests.test_ui_artifacts import (  # the module's own UI server (the harness serves no UI)
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGE_WAIT_MS,
    SCREENSHOTS,
    SERVER_START_S,
    VIEWPORT,
    _choose,
    _open_resume_form,
    _submit,
    _wait_for_pause,
    ui_server,  # noqa: F401 - a fixture
)

pytestmark = [pytest.mark.browser, pytest.mark.sandbox, pytest.mark.prefect]


def _workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text(CALC)
    return workspace


def _start_run(server: str, request: dict[str, object], tmp_path: Path, run_id: str) -> subprocess.Popen[str]:
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(request))
    return subprocess.Popen(
        [*CLI_ARGV, "run", str(request_file), "--run-id", run_id, "--no-prompt"],
        cwd=ROOT,
        env={**os.environ, "PREFECT_API_URL": f"{server}/api"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_patch_the_agent_asks_for_is_answered_in_the_prefect_ui(ui_server: str, tmp_path: Path) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    workspace = _workspace(tmp_path)
    script = [[{"patch": MUL_PATCH}], [{"exec": "cat calc.py"}], [{"message": "multiply added"}]]
    with ScriptedModel(script) as model:
        run = _start_run(ui_server, agent_request(workspace, model, profile=["read"]), tmp_path, "ui-agent-1")
        try:
            paused = _wait_for_pause(ui_server, run, "ui-agent-1", "the agent's patch")
            SCREENSHOTS.mkdir(exist_ok=True)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport=VIEWPORT)
                    dialog = _open_resume_form(page, ui_server, paused["id"])
                    # The question shows what the agent wants to do: the patch, with its diff.
                    dialog.get_by_text("apply patch: calc.py").first.wait_for(timeout=PAGE_WAIT_MS)
                    dialog.get_by_text("+def mul(a, b):").first.wait_for(timeout=PAGE_WAIT_MS)
                    _choose(page, dialog, "approve")
                    dialog.locator("textarea").nth(0).fill("the diff is fine")
                    page.screenshot(path=str(SCREENSHOTS / "ui-agent-patch.png"), full_page=True)
                    _submit(page, dialog)
                finally:
                    browser.close()
            _out, err = run.communicate(timeout=SERVER_START_S)
            assert run.returncode == 0, err[-3000:]
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
    manifest = validate_manifest(workspace / ".runs/agent-run/cli/ui-agent-1/manifest.json")
    (approval,) = manifest["approvals"]
    assert approval["answered_by"] == "prefect-ui" and approval["answer_reason"] == "the diff is fine"
    patch = next(c for c in manifest["tool_calls"] if c["kind"] == "edit")
    assert patch["status"] == "succeeded" and patch["approval_source"] == "human"
    assert "def mul(a, b):" in (workspace / "calc.py").read_text()


def _processes_in(workspace: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(os.readlink(proc / "cwd")) == workspace:
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_sigterm_interrupts_the_agents_turn_and_ends_codex(ui_server: str, tmp_path: Path) -> None:  # noqa: F811
    workspace = _workspace(tmp_path)
    script = [[{"exec": "sleep 60"}], [{"message": "never"}]]
    calls = workspace / ".runs/agent-run/cli/ui-agent-2/calls"
    with ScriptedModel(script) as model:
        request = agent_request(workspace, model, profile=["read", "run"])
        run = _start_run(ui_server, request, tmp_path, "ui-agent-2")
        try:
            deadline = time.monotonic() + SERVER_START_S
            while not any(
                '"status":"running"' in p.read_text().replace(" ", "") and "sleep 60" in p.read_text()
                for p in calls.glob("*.json")
            ):
                assert run.poll() is None, run.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "the agent's command never started"
                time.sleep(0.1)
            assert _processes_in(workspace)  # codex and its command, in the workspace
            run.send_signal(signal.SIGTERM)
            _out, err = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
    assert run.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert not _processes_in(workspace)
    (step,) = [c for c in (json.loads(p.read_text()) for p in calls.glob("*.json")) if c["kind"] == "agent"]
    assert step["status"] == "failed"
    assert step["error"] == "codex: turn interrupted (SIGTERM)"
