"""The manifest's per-agent-step summary: folded from the run's agent.* events and the records of the tool calls
the agent made (``parent_call_id``), byte-identical when rebuilt, read incrementally from the log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codex_orchestrator.agents import transcript
from codex_orchestrator.call_recorder import CallRecorder
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.agent_fold import AgentEventsReader
from codex_orchestrator.records.manifest import ToolCallRecord, ToolCallStatus
from codex_orchestrator.records.store import ManifestFolder, RunRef, RunStore
from codex_orchestrator.run import RunOwner
from tests.conftest import validate_manifest

STEP_CALL = "tc-implement-1a2b3c"
THREAD = "01a249a6-9a93-7c41-b18a-8c4433c44dc4"


def _owner(tmp_path: Path) -> RunOwner:
    ref = RunRef(run_id="run-1", task_id="task-a", runs_dir=str(tmp_path / ".runs"), workspace=str(tmp_path))
    owner = RunOwner.create(ref, request={})
    owner.start()
    return owner


def _call(
    owner: RunOwner,
    call_id: str,
    *,
    kind: str,
    command: str,
    status: ToolCallStatus,
    parent: str | None = None,
) -> None:
    rec = CallRecorder(owner.store, events=owner.events, tracer=owner.tracer, redact=owner.redact)
    call = ToolCallRecord(
        id=call_id,
        step="implement",
        milestone="exec",
        kind=kind,
        command=command,
        cwd=".",
        parent_call_id=parent,
    )
    started = rec.events.emit(
        ev.ToolCallStarted(
            tool_call_id=call_id, step="implement", kind=kind, command=command, cwd=".", backend="local"
        )
    )
    rec.begin_call(call, started.seq)
    call.status = status
    call.approval_source = "policy" if status == "denied" else "not-required"
    rec.finish_call(call)


def _notify(owner: RunOwner, method: str, params: dict[str, Any]) -> None:
    for event in transcript.from_notification(
        step="implement", call_id=STEP_CALL, method=method, params=params
    ):
        owner.events.emit(event)


def _item(turn: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"threadId": THREAD, "turnId": turn, "item": item}


def _usage(turn: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    last = {
        "inputTokens": input_tokens,
        "cachedInputTokens": 0,
        "outputTokens": output_tokens,
        "reasoningOutputTokens": 0,
        "totalTokens": input_tokens + output_tokens,
    }
    return {"threadId": THREAD, "turnId": turn, "tokenUsage": {"total": last, "last": last}}


def _agent_turn(owner: RunOwner, turn: str, *, resumed: bool = False, final: str = "Added multiply.") -> None:
    owner.events.emit(
        transcript.started(
            step="implement",
            call_id=STEP_CALL,
            agent="codex",
            agent_version="0.163.0",
            thread_id=THREAD,
            resumed=resumed,
        )
    )
    _notify(
        owner, "turn/started", {"threadId": THREAD, "turn": {"id": turn, "items": [], "status": "inProgress"}}
    )
    _notify(
        owner,
        "item/completed",
        _item(
            turn,
            {
                "type": "commandExecution",
                "id": "call_1",
                "command": "cat calc.py",
                "cwd": "/w",
                "status": "completed",
                "exitCode": 0,
                "aggregatedOutput": "def add",
                "commandActions": [],
            },
        ),
    )
    _notify(owner, "thread/tokenUsage/updated", _usage(turn, 100, 10))
    _notify(
        owner,
        "item/completed",
        _item(
            turn,
            {
                "type": "fileChange",
                "id": "call_2",
                "status": "completed",
                "changes": [{"path": "calc.py", "kind": {"type": "update"}, "diff": "+def multiply"}],
            },
        ),
    )
    _notify(owner, "item/completed", _item(turn, {"type": "agentMessage", "id": "m", "text": final}))
    _notify(owner, "thread/tokenUsage/updated", _usage(turn, 200, 20))
    _notify(
        owner,
        "turn/completed",
        {"threadId": THREAD, "turn": {"id": turn, "items": [], "status": "completed"}},
    )
    owner.events.emit(
        transcript.finished(step="implement", call_id=STEP_CALL, status="completed", turns=1, error=None)
    )


def test_an_agent_step_is_summarised_from_its_events_and_its_calls(tmp_path: Path) -> None:
    owner = _owner(tmp_path)
    _call(owner, "tc-inspect-000001", kind="shell", command="ls", status="succeeded")
    _call(owner, STEP_CALL, kind="agent", command="codex: add multiply", status="succeeded")
    _agent_turn(owner, "turn-1")
    _call(
        owner,
        f"{STEP_CALL}.call-1-aa",
        kind="shell",
        command="cat calc.py",
        status="succeeded",
        parent=STEP_CALL,
    )
    _call(
        owner,
        f"{STEP_CALL}.call-2-bb",
        kind="edit",
        command="apply patch: calc.py",
        status="succeeded",
        parent=STEP_CALL,
    )
    _call(
        owner,
        f"{STEP_CALL}.call-3-cc",
        kind="shell",
        command="curl example.org",
        status="denied",
        parent=STEP_CALL,
    )
    owner.finish("succeeded", 0)

    data = validate_manifest(owner.paths.manifest)
    (agent,) = data["agents"]
    assert {k: agent[k] for k in ("call_id", "step", "agent", "agent_version", "thread_id", "status")} == {
        "call_id": STEP_CALL,
        "step": "implement",
        "agent": "codex",
        "agent_version": "0.163.0",
        "thread_id": THREAD,
        "status": "completed",
    }
    assert (agent["turns"], agent["commands"], agent["file_changes"], agent["messages"]) == (1, 1, 1, 1)
    assert agent["tokens"] == {
        "input": 300,
        "cached_input": 0,
        "output": 30,
        "reasoning_output": 0,
        "total": 330,
    }
    assert agent["final_message"] == "Added multiply."
    assert [c["command"] for c in agent["tool_calls"]] == [
        "cat calc.py",
        "apply patch: calc.py",
        "curl example.org",
    ]
    assert agent["tool_calls_by_status"] == {"denied": 1, "succeeded": 2}
    assert agent["tool_calls"][2]["approval_source"] == "policy"
    # a fold from the files alone gives the same bytes
    assert ManifestFolder(RunStore(owner.ref)).render() == owner.paths.manifest.read_bytes()


def test_a_resumed_thread_adds_up_and_a_killed_step_reads_failed(tmp_path: Path) -> None:
    owner = _owner(tmp_path)
    _call(owner, STEP_CALL, kind="agent", command="codex", status="running")
    _agent_turn(owner, "turn-1", final="first")
    _agent_turn(owner, "turn-2", resumed=True, final="second")
    folder = ManifestFolder(RunStore(owner.ref))
    (agent,) = folder.manifest().agents
    assert (agent.turns, agent.resumed, agent.tokens.total, agent.final_message) == (2, 1, 660, "second")
    # started again and never finished, while its call ended (the process was killed): failed, with the reason
    owner.events.emit(
        transcript.started(
            step="implement",
            call_id=STEP_CALL,
            agent="codex",
            agent_version="0.163.0",
            thread_id=THREAD,
            resumed=True,
        )
    )
    assert folder.manifest().agents[0].status == "running"
    _call(owner, STEP_CALL, kind="agent", command="codex", status="failed")
    agent = folder.manifest().agents[0]
    assert agent.status == "failed" and agent.error is not None
    owner.finish("failed", 1)


def test_the_reader_takes_only_whole_lines_and_starts_over_on_a_new_log(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    event = {"seq": 1, "type": "agent.message", "tool_call_id": "c", "step": "s", "text": "hi"}
    line = json.dumps(event, separators=(",", ":"))  # as the log writes it
    log.write_text(line[:20])
    reader = AgentEventsReader(log)
    reader.update()
    assert reader.steps([]) == []  # a line still being written is left for later
    log.write_text(line + "\n" + "x" * (3 << 20) + "\n")  # a huge line after it is passed over, whole
    reader.update()
    (step,) = reader.steps([])
    assert step.messages == 1 and step.final_message == "hi"
    log.write_text("")  # replaced by a shorter log: read from its start
    reader.update()
    assert reader.steps([]) == []


def test_a_run_without_agent_steps_has_no_summaries(tmp_path: Path) -> None:
    owner = _owner(tmp_path)
    _call(owner, "tc-a-1", kind="shell", command="true", status="succeeded")
    owner.finish("succeeded", 0)
    assert validate_manifest(owner.paths.manifest)["agents"] == []
