"""agents/transcript.py: the real codex app-server's notifications, from a turn against the scripted model, become
the run's agent.* events (schema-valid, redacted, paths workspace-relative); odd or partial notifications never
raise."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from codex_orchestrator.agents import transcript
from codex_orchestrator.agents.scripted_model import ScriptedModel
from codex_orchestrator.records.agent_events import AGENT_TEXT_BUDGET_BYTES
from codex_orchestrator.records.events import EventLog
from codex_orchestrator.redact import Redactor
from tests.conftest import validate_events

codex_cli_bin = pytest.importorskip("codex_cli_bin")

SECRET = "sk-scripted-0123456789"
PATCH = (
    "*** Begin Patch\n*** Update File: calc.py\n@@\n def add(a, b):\n     return a + b\n"
    "+\n+\n+def multiply(a, b):\n+    return a * b\n*** End Patch"
)
SCRIPT: list[Any] = [
    {
        "items": [{"reasoning": "read calc.py first"}, {"exec": "cat calc.py"}],
        "usage": {"input_tokens": 100, "output_tokens": 10},
    },
    [{"patch": PATCH}],
    [{"exec": "curl -s http://127.0.0.1:9/"}],  # declined below: the turn goes on
    {"items": [{"message": f"Added multiply (key {SECRET} not needed)."}], "usage": {"output_tokens": 20}},
]


@dataclass
class Turn:
    """What one turn of the real codex sent: every notification (method, params) and the answers we gave."""

    notifications: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    answered: list[tuple[str, str]] = field(default_factory=list)


class AppServer:
    """A minimal JSON-RPC client of ``codex app-server`` over stdio, enough to run one turn (the driver under
    test elsewhere is agents/codex.py; this one only collects notifications for the transcript)."""

    def __init__(self, workspace: Path, codex_home: Path, overrides: Mapping[str, object]) -> None:
        argv = [str(codex_cli_bin.bundled_codex_path())]
        for key, value in overrides.items():
            argv += ["-c", f"{key}={json.dumps(value)}"]
        self.proc = subprocess.Popen(
            [*argv, "app-server", "--listen", "stdio://"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=workspace,
            env={**os.environ, "CODEX_HOME": str(codex_home)},
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.decline = "\0"  # approvals whose params mention this are declined, the rest accepted
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.messages.put(json.loads(line))

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any], turn: Turn | None = None) -> dict[str, Any]:
        self._next_id += 1
        own = self._next_id
        self.send({"id": own, "method": method, "params": params})
        while True:
            message = self.messages.get(timeout=60)
            if message.get("id") == own and "method" not in message:
                assert "error" not in message, message
                return dict(message["result"])
            if turn is not None:
                self._note(message, turn)

    def run_turn(self, thread_id: str, prompt: str, decline: str) -> Turn:
        turn = Turn()
        self.decline = decline
        self.request("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": prompt}]}, turn)
        while not turn.notifications or turn.notifications[-1][0] != "turn/completed":
            self._note(self.messages.get(timeout=60), turn)
        return turn

    def _note(self, message: dict[str, Any], turn: Turn) -> None:
        if "id" in message and "method" in message:  # a request of the server's: an approval
            decision = "decline" if self.decline in json.dumps(message["params"]) else "accept"
            turn.answered.append((message["method"], decision))
            self.send({"id": message["id"], "result": {"decision": decision}})
        elif "method" in message:
            turn.notifications.append((message["method"], message.get("params") or {}))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def real_turn() -> Iterator[tuple[Turn, Path]]:
    # codex's own sandbox will not set up under /tmp (its helper links): keep CODEX_HOME and the workspace out.
    root = Path(tempfile.mkdtemp(prefix="co-transcript-", dir="/var/tmp"))
    workspace, home = root / "repo", root / "codex-home"
    workspace.mkdir()
    home.mkdir()
    (workspace / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    try:
        with ScriptedModel(SCRIPT) as model:
            server = AppServer(workspace, home, model.provider_overrides())
            try:
                server.request(
                    "initialize",
                    {"clientInfo": {"name": "test", "title": "test", "version": "0"}, "capabilities": {}},
                )
                server.send({"method": "initialized"})
                started = server.request(
                    "thread/start",
                    {"cwd": str(workspace), "approvalPolicy": "untrusted", "sandbox": "workspace-write"},
                )
                turn = server.run_turn(started["thread"]["id"], "add a multiply function", decline="curl")
            finally:
                server.close()
        yield turn, workspace
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _transcribe(turn: Turn, workspace: Path, log: EventLog) -> None:
    for method, params in turn.notifications:
        for event in transcript.from_notification(
            step="implement", call_id="tc-implement-1", method=method, params=params, workspace=workspace
        ):
            log.emit(event)


def test_a_real_codex_turn_becomes_agent_events(real_turn: tuple[Turn, Path], tmp_path: Path) -> None:
    turn, workspace = real_turn
    assert turn.answered == [
        ("item/commandExecution/requestApproval", "accept"),
        ("item/fileChange/requestApproval", "accept"),
        ("item/commandExecution/requestApproval", "decline"),
    ]
    thread_id = turn.notifications[-1][1]["threadId"]
    log = EventLog(tmp_path / "events.jsonl", "run-1", Redactor([SECRET]))
    log.emit(
        transcript.started(
            step="implement",
            call_id="tc-implement-1",
            agent="codex",
            agent_version="0.163.0",
            thread_id=thread_id,
            resumed=False,
        )
    )
    _transcribe(turn, workspace, log)
    log.emit(
        transcript.finished(
            step="implement", call_id="tc-implement-1", status="completed", turns=1, error=None
        )
    )
    log.close()

    events = validate_events(
        tmp_path / "events.jsonl"
    )  # every line is valid against schemas/events.schema.json
    kinds = [e["type"] for e in events if e["type"] != "agent.tokens"]
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
    assert all(e["tool_call_id"] == "tc-implement-1" and e["step"] == "implement" for e in events)
    assert {e["thread_id"] for e in events if "thread_id" in e} == {thread_id}
    reasoning, read, patch, curl, message = (e for e in events if e["type"] in _ITEMS)
    assert reasoning["summary"] == "read calc.py first"
    assert read["status"] == "completed" and read["exit_code"] == 0 and read["cwd"] == "."
    assert read["command"] == "cat calc.py" and "return a + b" in read["output"]  # no shell wrapper
    assert patch["status"] == "completed"
    (change,) = patch["changes"]
    assert (
        change["path"] == "calc.py"
        and change["kind"] == "update"
        and "+def multiply(a, b):" in change["diff"]
    )
    assert curl["status"] == "declined" and curl["exit_code"] is None and curl["output"] == ""
    assert message["text"] == "Added multiply (key *** not needed)."  # redacted by the log, like any event
    assert SECRET not in (tmp_path / "events.jsonl").read_text()
    (finished,) = (e for e in events if e["type"] == "agent.turn.finished")
    assert finished["status"] == "completed" and finished["error"] is None
    # one usage event per model response; the responses' own usage adds up to the thread's total
    tokens = [e for e in events if e["type"] == "agent.tokens"]
    assert len(tokens) == len(SCRIPT)
    assert sum(t["last"]["total"] for t in tokens) == tokens[-1]["total"]["total"]
    assert tokens[0]["last"] == {
        "input": 100,
        "cached_input": 0,
        "output": 10,
        "reasoning_output": 0,
        "total": 110,
    }


_ITEMS = ("agent.reasoning", "agent.command", "agent.file_change", "agent.message")


def test_deltas_and_bookkeeping_notifications_give_no_events(real_turn: tuple[Turn, Path]) -> None:
    turn, _workspace = real_turn
    seen = {m for m, _p in turn.notifications}
    silent = seen - transcript.TRANSCRIBED_METHODS
    assert "item/started" in silent and {m for m in seen if m.endswith(("Delta", "/delta"))} <= silent
    # Whether codex streams a short command's output as deltas before its item completes depends on timing
    # (this turn may have none): a delta is folded by the item/completed that follows, never an event itself.
    ids = {"threadId": "t", "turnId": "u", "itemId": "i"}
    for method in ("item/commandExecution/outputDelta", "item/agentMessage/delta"):
        assert method not in transcript.TRANSCRIBED_METHODS
        assert (
            transcript.from_notification(step="s", call_id="c", method=method, params={**ids, "delta": "x"})
            == []
        )
    for method, params in turn.notifications:
        if method in silent:
            assert transcript.from_notification(step="s", call_id="c", method=method, params=params) == []


def _one(method: str, params: dict[str, Any]) -> dict[str, Any]:
    (event,) = transcript.from_notification(step="s", call_id="tc-s", method=method, params=params)
    return event.model_dump(mode="json")


def test_a_failed_turn_says_why() -> None:
    # as codex sends it when the model endpoint keeps failing (TurnCompletedNotification)
    event = _one(
        "turn/completed",
        {
            "threadId": "th",
            "turn": {
                "id": "tu",
                "items": [],
                "status": "failed",
                "error": {"message": "stream disconnected", "additionalDetails": "HTTP 500"},
                "durationMs": 40,
            },
        },
    )
    assert event["type"] == "agent.turn.finished"
    assert (event["status"], event["error"], event["duration_ms"]) == (
        "failed",
        "stream disconnected: HTTP 500",
        40.0,
    )
    interrupted = _one(
        "turn/completed", {"threadId": "th", "turn": {"id": "tu", "items": [], "status": "interrupted"}}
    )
    assert interrupted["status"] == "interrupted" and interrupted["error"] is None


def test_plan_updates_and_errors() -> None:
    plan = _one(
        "turn/plan/updated",
        {
            "threadId": "th",
            "turnId": "tu",
            "explanation": "small change",
            "plan": [{"step": "read", "status": "completed"}, {"step": "patch", "status": "inProgress"}],
        },
    )
    assert plan["steps"] == [
        {"step": "read", "status": "completed"},
        {"step": "patch", "status": "in-progress"},
    ]
    assert plan["explanation"] == "small change"
    error = _one(
        "error",
        {"threadId": "th", "turnId": "tu", "willRetry": True, "error": {"message": "Reconnecting... 1/5"}},
    )
    assert (error["type"], error["message"], error["will_retry"]) == (
        "agent.error",
        "Reconnecting... 1/5",
        True,
    )


def test_other_tools_by_name() -> None:
    base = {"threadId": "th", "turnId": "tu"}
    mcp = _one(
        "item/completed",
        {
            **base,
            "item": {
                "type": "mcpToolCall",
                "id": "m1",
                "server": "docs",
                "tool": "search",
                "status": "failed",
                "arguments": {},
                "error": {"message": "timed out"},
            },
        },
    )
    assert (mcp["tool"], mcp["status"], mcp["detail"]) == ("mcp:docs/search", "failed", "timed out")
    web = _one(
        "item/completed", {**base, "item": {"type": "webSearch", "id": "w1", "query": "prefect pause"}}
    )
    assert (web["tool"], web["detail"]) == ("web_search", "prefect pause")


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("item/completed", {}),
        ("item/completed", {"item": "not a mapping"}),
        ("item/completed", {"item": {"type": "commandExecution", "exitCode": "0", "durationMs": None}}),
        ("item/completed", {"item": {"type": "fileChange", "changes": [{"kind": 3}, "x"]}}),
        ("turn/completed", {"turn": None}),
        ("thread/tokenUsage/updated", {"tokenUsage": {"total": {"inputTokens": True}}}),
        ("turn/plan/updated", {"plan": [{"status": "unknown"}]}),
    ],
)
def test_partial_notifications_never_raise(method: str, params: dict[str, Any]) -> None:
    for event in transcript.from_notification(step="s", call_id="c", method=method, params=params):
        type(event).model_validate(event.model_dump())  # still a valid event


def test_long_texts_keep_head_and_tail_within_budget() -> None:
    text = "é" + "x" * (AGENT_TEXT_BUDGET_BYTES * 2) + "END"
    event = _one(
        "item/completed",
        {"threadId": "t", "turnId": "u", "item": {"type": "agentMessage", "id": "m", "text": text}},
    )
    assert event["text"].startswith("éx") and event["text"].endswith("xEND")
    kept = len(text.encode()) - event["omitted_bytes"]
    assert kept <= AGENT_TEXT_BUDGET_BYTES and event["omitted_bytes"] > AGENT_TEXT_BUDGET_BYTES
    assert transcript.clip("short") == ("short", 0)


def test_paths_outside_the_workspace_stay_absolute(tmp_path: Path) -> None:
    item = {
        "type": "fileChange",
        "id": "p",
        "status": "declined",
        "changes": [
            {"path": str(tmp_path / "ws" / "a.py"), "kind": {"type": "add"}, "diff": "+x"},
            {"path": "/etc/passwd", "kind": {"type": "update", "move_path": None}, "diff": "-root"},
        ],
    }
    (event,) = transcript.from_notification(
        step="s",
        call_id="c",
        method="item/completed",
        params={"threadId": "t", "turnId": "u", "item": item},
        workspace=tmp_path / "ws",
    )
    changes = event.model_dump()["changes"]
    assert [c["path"] for c in changes] == ["a.py", "/etc/passwd"]
