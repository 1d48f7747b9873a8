"""The SDK against the real CLI: real subprocesses, PTYs and bwrap; one run + approve on a real Prefect server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from codex_orchestrator.execcmd import EXIT_DENIED
from codex_orchestrator.records.events import EVENTS_SCHEMA_VERSION
from codex_orchestrator.sdk import AsyncClient, Client, ExecSummary, SdkError
from tests.conftest import ROOT, validate_event_lines, validate_manifest

WAIT_S = 60.0
APPROVAL_WAIT_S = 120.0


def _output(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"] for e in events if e["type"] == "output")


def _validated(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events as the SDK gave them must be the schema's events, in seq order from 1."""
    validate_event_lines([json.dumps(e) for e in events])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    return events


def test_exec_succeeds_and_passes_the_exit_code_through(tmp_path: Path) -> None:
    client = Client()
    with client.exec(["true"], cwd=tmp_path) as ok:
        assert ok.wait(timeout_s=WAIT_S).ok
    with client.exec(["sh", "-c", "echo hi; exit 3"], cwd=tmp_path, task="sdk-exit") as handle:
        events = _validated(list(handle.events()))
        summary = handle.wait(timeout_s=WAIT_S)
    assert summary.status == "failed" and summary.exit_code == 3 and summary.return_code == 3
    assert summary.attempts == 1 and summary.sandbox_state == "sandboxed"
    assert events[0]["type"] == "run.started" and events[-2]["type"] == "run.finished"
    assert events[-1]["type"] == "summary" and events[-1]["exit_code"] == 3
    assert "hi" in _output(events)
    assert {e["schema_version"] for e in events} == {EVENTS_SCHEMA_VERSION}
    assert summary.run_id == handle.run_id == events[0]["run_id"]
    assert (
        summary.manifest
        == handle.manifest_path
        == tmp_path / f".runs/sdk-exit/cli/{handle.run_id}/manifest.json"
    )
    assert validate_manifest(summary.manifest)["tool_calls"][0]["exit_code"] == 3
    assert handle.pending_approval() is None


def test_exec_stdin_round_trip(tmp_path: Path) -> None:
    with Client().exec(["sh", "-c", "read x; echo got:$x"], cwd=tmp_path, stdin=True) as handle:
        handle.write_stdin("ping\n")
        handle.close_stdin()
        summary = handle.wait(timeout_s=WAIT_S)
        events = _validated(list(handle.events()))  # events() replays from the first after the end
    assert summary.ok and summary.return_code == 0
    assert "got:ping" in _output(events)


def test_exec_denied_by_policy(tmp_path: Path) -> None:
    with Client().exec(["touch", "f"], cwd=tmp_path, policy="never", profile=["read"]) as handle:
        summary = handle.wait(timeout_s=WAIT_S)
    assert summary.status == "denied" and summary.approval_source == "policy"
    assert summary.return_code == EXIT_DENIED and summary.exit_code is None
    assert not (tmp_path / "f").exists()


def test_bad_option_raises_sdk_error_with_the_cli_message(tmp_path: Path) -> None:
    with Client().exec(["true"], cwd=tmp_path, policy="sometimes") as handle:
        assert list(handle.events()) == []
        with pytest.raises(SdkError, match="--policy") as caught:
            handle.wait(timeout_s=WAIT_S)
    assert caught.value.return_code == 2 and "sometimes" in caught.value.stderr_tail
    assert not (tmp_path / ".runs").exists()
    with pytest.raises(SdkError, match="stdin=True"), Client().exec(["true"], cwd=tmp_path) as no_stdin:
        no_stdin.write_stdin("x")
    with pytest.raises(TypeError, match="polcy"):
        Client().exec(["true"], polcy="never")  # type: ignore[call-arg]


def test_kill_interrupts_the_command_and_the_run_is_recorded(tmp_path: Path) -> None:
    with Client().exec(["sleep", "60"], cwd=tmp_path) as handle:
        for event in handle.events():
            if event["type"] == "attempt.started":
                break
        handle.kill()
        with pytest.raises(SdkError, match="without a summary"):
            handle.wait(timeout_s=WAIT_S)
    manifest = validate_manifest(handle.manifest_path)
    assert manifest["status"] == "interrupted" and manifest["finished_at"]


def test_async_client_success_and_stdin_round_trip(tmp_path: Path) -> None:
    async def scenario() -> tuple[ExecSummary, list[dict[str, Any]], ExecSummary]:
        client = AsyncClient()
        async with await client.exec(["sh", "-c", "echo hi; exit 3"], cwd=tmp_path) as failing:
            failed = await failing.wait(timeout_s=WAIT_S)
        async with await client.exec(["sh", "-c", "read x; echo got:$x"], cwd=tmp_path, stdin=True) as handle:
            await handle.write_stdin(b"pong\n")
            await handle.close_stdin()
            events = [event async for event in handle.events()]
            return await handle.wait(timeout_s=WAIT_S), events, failed

    summary, events, failed = asyncio.run(scenario())
    assert failed.exit_code == 3 and failed.return_code == 3 and failed.status == "failed"
    assert summary.ok and summary.exit_code == 0
    assert "got:pong" in _output(_validated(events))


def test_approve_and_run_errors_are_sdk_errors(tmp_path: Path) -> None:
    with pytest.raises(SdkError, match="no-such-run") as caught:
        Client().approve("no-such-run", runs_dir=tmp_path)
    assert caught.value.return_code == 2

    async def approve_async() -> None:
        await AsyncClient(cwd=tmp_path).approve("no-such-run", deny=True, reason="r")

    with pytest.raises(SdkError, match="no-such-run"):
        asyncio.run(approve_async())
    request = tmp_path / "request.yaml"
    request.write_text("task: t\nworkspace: .\napproval_policy: sometimes\nsteps: [{name: s, command: ls}]\n")
    with pytest.raises(SdkError, match="approval_policy"):
        Client().run(request)
    assert not (tmp_path / ".runs").exists()


# A real CLI cannot print another major version, so this one stand-in prints a run.started of version 2.0.
FUTURE_CLI = """\
import json, sys
print(json.dumps({"seq": 1, "ts": "2030-01-01T00:00:00.000Z", "run_id": "r", "schema_version": "2.0",
                  "type": "run.started", "task_id": "exec", "manifest": "m", "mode": "exec"}), flush=True)
"""


@pytest.mark.parametrize(
    ("version", "accepted"), [("1.0", True), ("1.7", True), ("2.0", False), (None, False)]
)
def test_event_stream_refuses_another_major_schema_version(version: str | None, accepted: bool) -> None:
    from codex_orchestrator.sdk._shared import EventStream

    event: dict[str, Any] = {"seq": 1, "ts": "t", "run_id": "r", "type": "run.finished", "status": "x"}
    if version is not None:
        event["schema_version"] = version
    stream = EventStream()
    stream.feed(json.dumps(event).encode() + b"\n")
    assert (stream.failure is None) is accepted
    if not accepted:
        assert stream.failure is not None and "this SDK reads 1.x" in str(stream.failure)


def test_a_cli_of_another_major_version_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "future_cli.py"
    script.write_text(FUTURE_CLI)
    with Client(executable=[sys.executable, str(script)]).exec(["true"], cwd=tmp_path) as handle:
        with pytest.raises(SdkError, match=r"schema version 2\.0, but this SDK reads 1\.x"):
            list(handle.events())
        with pytest.raises(SdkError, match="same major version"):
            handle.wait(timeout_s=WAIT_S)


def test_importing_the_sdk_does_not_import_prefect() -> None:
    code = "import sys, codex_orchestrator.sdk; print(any(m.split('.')[0] == 'prefect' for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


REQUEST = """\
task: sdk-approve
workspace: ws
approval_policy: on-request
profile: [read]
sandbox: none
steps:
  - name: fetch-like
    command: "true"
    capabilities: [network]
"""


@pytest.mark.prefect
def test_run_waits_for_approval_and_the_sdk_approves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No PREFECT_API_URL: the run starts its own embedded server, and `approve` finds it through the manifest.
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    (tmp_path / "ws").mkdir()
    request = tmp_path / "request.yaml"
    request.write_text(REQUEST)
    client = Client(env={"PREFECT_HOME": str(tmp_path / "prefect-home")}, cwd=tmp_path)
    with client.run(request, run_id="sdk-run") as handle:
        deadline = time.monotonic() + APPROVAL_WAIT_S
        while handle.pending_approval() is None:
            assert handle.return_code is None, handle.wait()
            assert time.monotonic() < deadline, "no approval was requested"
            time.sleep(0.2)
        pending = handle.pending_approval()
        assert pending is not None and pending["needs"] == ["network"] and pending["flow_run_id"]
        # As the README has it (the client knows the run); remember: the answer also writes an allow rule.
        client.approve(handle.run_id, reason="sdk test", remember=True)
        summary = handle.wait(timeout_s=APPROVAL_WAIT_S)
        events = _validated(list(handle.events()))
    assert summary.ok and summary.exit_code == 0 and summary.return_code == 0
    assert summary.manifest == tmp_path / "ws/.runs/sdk-approve/cli/sdk-run/manifest.json"
    manifest = validate_manifest(summary.manifest)
    assert manifest["tool_calls"][0]["approval_source"] == "human"
    assert manifest["approvals"][0]["answer_reason"] == "sdk test"
    assert manifest["approvals"][0]["answered_by"] == "sdk"
    rule = 'prefix_rule(pattern=["true"], decision="allow")'
    assert manifest["approvals"][0]["remembered"] == [rule]
    assert (tmp_path / "ws/.codex/rules/default.rules").read_text() == rule + "\n"
    resolved = next(e for e in events if e["type"] == "approval.resolved")
    assert resolved["source"] == "human" and resolved["outcome"] == "approved"
    with pytest.raises(SdkError, match="no pending approval") as caught:
        client.approve(handle.run_id, runs_dir=handle.runs_dir)
    assert caught.value.return_code == 1


DYING_SCRIPT = """
import os, sys, time
from pathlib import Path
from codex_orchestrator.sdk import Client
client = Client(cwd=Path(sys.argv[1]))
handle = client.run(sys.argv[2], run_id="orphan-run")
while handle.pending_approval() is None:
    time.sleep(0.2)
print("pending", flush=True)
os._exit(1)  # the script dies without a word to its child
"""


@pytest.mark.prefect
def test_a_dying_script_takes_its_run_along_and_the_sdk_resumes_it(
    tmp_path: Path, prefect_server: str
) -> None:
    (tmp_path / "ws").mkdir()
    request = tmp_path / "request.yaml"
    request.write_text(REQUEST)
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", DYING_SCRIPT, str(tmp_path), str(request)],
        env=env,
        capture_output=True,
        text=True,
        timeout=APPROVAL_WAIT_S,
    )
    assert "pending" in done.stdout, done.stderr
    manifest = tmp_path / "ws/.runs/sdk-approve/cli/orphan-run/manifest.json"
    deadline = time.monotonic() + APPROVAL_WAIT_S
    while json.loads(manifest.read_text())["status"] not in ("interrupted", "failed"):
        assert time.monotonic() < deadline, "the run outlived the script that started it"
        time.sleep(0.2)
    assert json.loads(manifest.read_text())["status"] == "interrupted"
    client = Client(env={"PREFECT_API_URL": prefect_server}, cwd=tmp_path)
    with client.resume("orphan-run", runs_dir=tmp_path / "ws/.runs") as handle:
        while handle.pending_approval() is None:
            assert handle.return_code is None, handle.wait()
            assert time.monotonic() < deadline, "the resumed run asked nothing"
            time.sleep(0.2)
        client.approve("orphan-run")
        summary = handle.wait(timeout_s=APPROVAL_WAIT_S)
    assert summary.ok
    data = validate_manifest(manifest)
    assert data["status"] == "succeeded" and len(data["resumed_at"]) == 1
