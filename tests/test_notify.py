"""Notifications (notify.py, tasks/notify.py): a command target without Prefect, a failing target recorded,
and on a real Prefect server a run whose instruction drift asks for approval — told through a real
CustomWebhookNotificationBlock to a loopback webhook receiver, as Prefect events, and by the shipped
approval-waiting automation firing while the approval waits."""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest

from codex_orchestrator import notify
from codex_orchestrator.approvals import NoApprover
from codex_orchestrator.execcmd import ExecOptions, call_input, run_exec
from codex_orchestrator.notify import NOTIFY_ENV_VAR, NotificationTarget, notification_for
from codex_orchestrator.records.events import read_events
from codex_orchestrator.records.manifest import load_manifest
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.records.views import manifest_markdown
from codex_orchestrator.request import RunRequest, parse_request
from codex_orchestrator.run import RunOwner
from codex_orchestrator.sandbox import SandboxMode
from tests.conftest import ROOT, validate_manifest


def _recorder(tmp_path: Path, name: str, exit_code: int = 0) -> tuple[list[str], Path]:
    out = tmp_path / f"{name}.jsonl"
    script = tmp_path / f"{name}.py"
    script.write_text(
        f"import sys\nopen({str(out)!r}, 'a').write(sys.stdin.read() + '\\n')\nsys.exit({exit_code})\n"
    )
    return [sys.executable, str(script)], out


def test_exec_tells_a_command_target_without_importing_prefect(tmp_path: Path) -> None:
    argv, out = _recorder(tmp_path, "notified")
    code = (
        "import json, sys\nfrom pathlib import Path\n"
        "from codex_orchestrator.approvals import NoApprover\n"
        "from codex_orchestrator.execcmd import ExecOptions, call_input, run_exec\n"
        "from codex_orchestrator.sandbox import SandboxMode\n"
        f"ws = Path({str(tmp_path)!r})\n"
        "options = ExecOptions(argv=('true',), workspace=ws, cwd=ws, run_id='notify-exec', sandbox=SandboxMode.NONE)\n"
        "run_exec(call_input(options), NoApprover('nobody'))\n"
        "print(json.dumps({'prefect': 'prefect' in sys.modules}))\n"
    )
    env = {**os.environ, NOTIFY_ENV_VAR: json.dumps(argv)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"prefect": False}
    (payload,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert payload["type"] == "run.succeeded" and payload["run_id"] == "notify-exec"
    assert payload["task_id"] == "exec" and payload["exit_code"] == 0


def test_a_failing_target_is_recorded_and_the_run_still_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in a process without Prefect (an exec that never pauses), whatever other tests imported here.
    monkeypatch.setattr(notify, "_PREFECT_DELIVERY", None)
    good, good_out = _recorder(tmp_path, "good")
    bad, _ = _recorder(tmp_path, "bad", exit_code=3)
    options = ExecOptions(
        argv=("true",), workspace=tmp_path, cwd=tmp_path, run_id="notify-fail", sandbox=SandboxMode.NONE
    )
    targets = [
        NotificationTarget(command=bad),
        NotificationTarget(command=good, events=["run.succeeded", "run.failed"]),
        NotificationTarget(block="custom-webhook/nowhere"),  # no Prefect in this call's path: recorded
    ]
    call = call_input(options).model_copy(update={"notifications": targets})
    result = run_exec(call, NoApprover("nobody"))
    assert result.status == "succeeded"
    manifest = validate_manifest(result.manifest)
    assert manifest["status"] == "succeeded"
    failures = {(f["target"], f["event"]) for f in manifest["notification_failures"]}
    assert (f"command:{sys.executable}", "run.succeeded") in failures
    assert ("block:custom-webhook/nowhere", "run.succeeded") in failures
    events = read_events(result.manifest.parent / "events.jsonl")
    failed = [e for e in events if e["type"] == "notification.failed"]
    assert any("exit code 3" in e["detail"] for e in failed)
    assert [json.loads(line)["type"] for line in good_out.read_text().splitlines()] == ["run.succeeded"]


def test_only_asked_approvals_and_ends_are_notifications() -> None:
    assert (
        notification_for({"type": "approval.resolved", "approval_id": None, "source": "not-required"}) is None
    )
    assert notification_for({"type": "approval.resolved", "approval_id": "a1"}) == "approval.resolved"
    assert notification_for({"type": "run.finished", "status": "denied"}) == "run.failed"
    assert notification_for({"type": "run.finished", "status": "interrupted"}) == "run.interrupted"
    assert notification_for({"type": "guard.switched"}) == "guard.switched"
    assert notification_for({"type": "output"}) is None


# -- on a real Prefect server -----------------------------------------------------------------------------
class _Receiver(BaseHTTPRequestHandler):
    received: queue.Queue[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.put(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    received: queue.Queue[dict[str, Any]] = queue.Queue()
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def _until(received: queue.Queue[dict[str, Any]], want: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """The first message whose text contains ``want`` (waiting on the receiver's queue, not on a clock)."""
    for message in seen:
        if want in json.dumps(message):
            return message
    while True:
        message = received.get(timeout=120)
        seen.append(message)
        if want in json.dumps(message):
            return message


def _previous_run(request: RunRequest) -> str:
    """An earlier run of the task whose foundation recorded its instructions, through the foundation's own
    functions (its flow adds nothing to compare with; a whole second run would only add suite time)."""
    from tasks.foundation import load_instruction_files, record_instructions

    ref = RunRef(
        run_id="earlier-run",
        task_id=request.task,
        runs_dir=str(Path(request.workspace) / ".runs"),
        workspace=request.workspace,
    )
    owner = RunOwner.create(ref, request=request.model_dump(mode="json"))
    loaded = load_instruction_files.fn(ref, request.instructions, request.step_cwds())
    assert record_instructions(owner, request, loaded, logging.getLogger(__name__)).status == "first-run"
    owner.begin_milestone("foundation")
    owner.end_milestone("foundation", "succeeded")
    owner.finish("succeeded", 0)
    return ref.run_id


@pytest.mark.prefect
def test_drift_asks_and_every_target_is_told(
    prefect_server: str, workspace: Path, webhook: tuple[str, queue.Queue[dict[str, Any]]]
) -> None:
    from prefect.automations import Automation
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from tasks.notify import ensure_approval_wait_automation

    url, received = webhook
    block_name = f"ops-{uuid.uuid4().hex[:8]}"
    CustomWebhookNotificationBlock(
        name="ops", url=url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
    ).save(block_name)
    block = f"custom-webhook/{block_name}"
    automation = ensure_approval_wait_automation(block, 10, name=f"approval-waiting-{block_name}")
    try:
        _drift_run_tells_every_target(workspace, block, received)
    finally:  # the session's server is shared: leave no automation behind
        cast(Automation, Automation.read(name=automation["name"])).delete()
    assert automation["within_s"] == 10


def _drift_run_tells_every_target(workspace: Path, block: str, received: queue.Queue[dict[str, Any]]) -> None:
    from codex_orchestrator.approvals import Decision
    from tasks.approval import answer_approval
    from tests.flows.test_autonomy import _run, _wait_pending

    base: dict[str, Any] = {
        "task": "notified",
        "workspace": str(workspace),
        "steps": [{"name": "look", "command": "ls"}],
    }
    previous = _previous_run(parse_request(base))

    (workspace / "AGENTS.md").write_text("# rules\nchanged since the first run\n")
    seen: list[dict[str, Any]] = []

    def answer(manifest: Path) -> None:
        pending = _wait_pending(manifest)
        # The automation fires on the Prefect event while nobody answers; only then is the question answered.
        _until(received, "Still waiting for an answer", seen)
        api_url = json.loads(manifest.read_text())["prefect"]["api_url"]
        answer_approval(pending["flow_run_id"], Decision.APPROVE, answered_by="sdk", api_url=api_url)

    request = parse_request(
        {
            **base,
            "on_instruction_drift": "ask",
            # The hooks travel with each call by value into its Prefect task.
            "hooks": {"pre_tool_call": "echo checked-by-pre-hook", "post_tool_call": "exit 2"},
            "notifications": [
                {"block": block, "events": ["approval.requested", "run.succeeded"]},
                {"prefect_event": True},
                {"block": "custom-webhook/not-saved", "events": ["run.succeeded"]},
            ],
        }
    )
    code, data, manifest_path = _run(request, answer)
    assert code == 0 and data["status"] == "succeeded"
    (call,) = data["tool_calls"]
    assert [(h["hook"], h["decision"], h["context"]) for h in call["hooks"]] == [
        ("pre_tool_call", "allow", "checked-by-pre-hook"),
        ("post_tool_call", "block", None),
    ]
    assert data["drift"]["status"] == "drifted" and data["drift"]["decision"] == "approved"
    assert data["drift"]["previous_run_id"] == previous
    assert [(c["path"], c["change"]) for c in data["drift"]["changes"]] == [("AGENTS.md", "changed")]
    (asked,) = [a for a in data["approvals"] if a["purpose"] == "instructions"]
    assert asked["outcome"] == "approved" and asked["approval_id"] == data["drift"]["approval_id"]
    waiting = _until(received, "Still waiting for an answer", seen)
    assert asked["approval_id"] in waiting["body"]  # the automation names the approval that waits
    assert "approval.requested" in _until(received, "approval.requested", seen)["subject"]
    assert "run.succeeded" in _until(received, "run.succeeded", seen)["subject"]
    assert {(f["target"], f["event"]) for f in data["notification_failures"]} == {
        ("block:custom-webhook/not-saved", "run.succeeded")
    }
    events = read_events(manifest_path.parent / "events.jsonl")
    (drifted,) = [e for e in events if e["type"] == "instructions.drift"]
    assert drifted["changed"] == ["AGENTS.md"] and drifted["policy"] == "ask"
    markdown = manifest_markdown(load_manifest(manifest_path), "manifest.json", milestone="final")
    assert "Instruction drift" in markdown and "AGENTS.md changed" in markdown


def test_the_automation_command_needs_a_server_and_a_sane_wait(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from codex_orchestrator.cli import main

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["automation", "--block", "custom-webhook/ops"]) == 2
    assert "PREFECT_API_URL" in capsys.readouterr().err
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert main(["automation", "--block", "custom-webhook/ops", "--after", "0"]) == 2
    assert "--after" in capsys.readouterr().err
