"""telemetry/agent.py: an agent step's turns as spans (agent turn → tool call → approval), whichever thread or
process gates the agent's tool calls; tokens and agent tool calls as metrics with a closed vocabulary."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from codex_orchestrator.agents import transcript
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.redact import Redactor
from codex_orchestrator.telemetry import RunTracer, joined
from codex_orchestrator.telemetry.agent import AgentTelemetry
from codex_orchestrator.telemetry.metrics import call_measurements, token_measurements, turn_measurements

THREAD = "th-1"


def _events(method: str, params: dict[str, Any]) -> list[Any]:
    return transcript.from_notification(
        step="implement", call_id="tc-implement", method=method, params=params
    )


def _turn(telemetry: AgentTelemetry, turn: str, status: str | None = "completed") -> None:
    for event in _events("turn/started", {"threadId": THREAD, "turn": {"id": turn, "status": "inProgress"}}):
        telemetry.observe(event)
    usage = {"inputTokens": 100, "cachedInputTokens": 40, "outputTokens": 10, "totalTokens": 110}
    for event in _events(
        "thread/tokenUsage/updated",
        {"threadId": THREAD, "turnId": turn, "tokenUsage": {"total": usage, "last": usage}},
    ):
        telemetry.observe(event)
    for event in _events(
        "item/completed",
        {
            "threadId": THREAD,
            "turnId": turn,
            "item": {"type": "commandExecution", "id": "c", "status": "declined"},
        },
    ):
        telemetry.observe(event)
    if status is not None:
        finished = {"threadId": THREAD, "turn": {"id": turn, "status": status, "error": {"message": "boom"}}}
        for event in _events("turn/completed", finished):
            telemetry.observe(event)


def _spans(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_tool_calls_nest_under_the_turn_whichever_thread_gates_them(tmp_path: Path) -> None:
    tracer = RunTracer(tmp_path / "traces.jsonl", run_id="r", task_id="t", redact=Redactor())
    telemetry: AgentTelemetry

    def gate_in_reader_thread() -> None:  # as the protocol client's reader thread answers an approval request
        with (
            telemetry.turn_context(),
            tracer.span("tool_call", **{"codex.tool_call.id": "tc-a"}),
            tracer.span("approval"),
        ):
            pass

    def gate_elsewhere(traceparent: str | None) -> None:  # as a call carried by value to another process
        with joined(traceparent), tracer.span("tool_call", **{"codex.tool_call.id": "tc-b"}):
            pass

    with tracer.span("tool_call", **{"codex.tool_call.id": "tc-implement"}) as step_span:
        telemetry = AgentTelemetry(tracer, step="implement", call_id="tc-implement", agent="codex")
        for event in _events(
            "turn/started", {"threadId": THREAD, "turn": {"id": "u1", "status": "inProgress"}}
        ):
            telemetry.observe(event)
        for target, args in ((gate_in_reader_thread, ()), (gate_elsewhere, (telemetry.traceparent(),))):
            worker = threading.Thread(target=target, args=args)
            worker.start()
            worker.join()
        _turn_end = {"threadId": THREAD, "turn": {"id": "u1", "status": "completed"}}
        for event in _events("turn/completed", _turn_end):
            telemetry.observe(event)
        step_id = f"{step_span.get_span_context().span_id:016x}"
    tracer.shutdown()
    spans = _spans(tmp_path / "traces.jsonl")
    turns = [s for s in spans if s["name"] == "agent_turn"]
    (turn,) = turns
    assert turn["parent_span_id"] == step_id
    assert turn["attributes"]["codex.agent.turn_id"] == "u1" and turn["attributes"]["codex.agent"] == "codex"
    assert turn["attributes"]["codex.agent.turn.status"] == "completed" and turn["status"] == "OK"
    by_id = {s["attributes"].get("codex.tool_call.id"): s for s in spans if s["name"] == "tool_call"}
    assert by_id["tc-a"]["parent_span_id"] == turn["span_id"]
    assert by_id["tc-b"]["parent_span_id"] == turn["span_id"]
    (approval,) = [s for s in spans if s["name"] == "approval"]
    assert approval["parent_span_id"] == by_id["tc-a"]["span_id"]


def test_a_turn_records_tokens_and_what_the_agent_did_and_a_failure_says_why(tmp_path: Path) -> None:
    tracer = RunTracer(tmp_path / "traces.jsonl", run_id="r", task_id="t", redact=Redactor(["boom"]))
    telemetry = AgentTelemetry(tracer, step="implement", call_id="tc-implement", agent="codex")
    _turn(telemetry, "u1", status="failed")
    _turn(telemetry, "u2", status=None)  # still running when the step ends
    telemetry.close()
    tracer.shutdown()
    first, second = (s for s in _spans(tmp_path / "traces.jsonl") if s["name"] == "agent_turn")
    assert first["attributes"]["gen_ai.usage.input_tokens"] == 100
    assert first["attributes"]["gen_ai.usage.output_tokens"] == 10
    assert first["status"] == "ERROR" and first["attributes"]["codex.agent.turn.status"] == "failed"
    assert "boom" not in json.dumps(first)  # redacted like every span attribute and status
    assert [e["name"] for e in first["events"]] == ["agent.command"]
    assert first["events"][0]["attributes"] == {"codex.agent.item.status": "declined"}
    assert second["status"] == "ERROR" and second["attributes"]["codex.agent.turn.status"] == "interrupted"


def test_agent_metrics_use_the_closed_vocabulary() -> None:
    call = ToolCallRecord(
        id="tc-implement.call-1",
        step="implement",
        milestone="exec",
        kind="shell",
        command="curl x",
        cwd=".",
        status="denied",
        parent_call_id="tc-implement",
    )
    agent_calls = [m for m in call_measurements(call) if m.instrument == "codex.agent.tool_calls"]
    assert [(m.value, m.attributes) for m in agent_calls] == [
        (1, (("codex.outcome", "denied"), ("codex.tool", "shell")))
    ]
    plain = call.model_copy(update={"parent_call_id": None})
    assert not [m for m in call_measurements(plain) if m.instrument == "codex.agent.tool_calls"]
    tokens = token_measurements(
        "codex", {"input": 100, "cached_input": 0, "output": 7, "reasoning_output": 0}
    )
    assert [(m.value, dict(m.attributes)["codex.agent.token_type"]) for m in tokens] == [
        (100, "input"),
        (7, "output"),
    ]
    (turn,) = turn_measurements("some-new-agent", "weird")
    assert dict(turn.attributes) == {"codex.agent": "other", "codex.agent.turn.status": "other"}
