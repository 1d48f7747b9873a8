"""The SDKs' event types: the Python SDK's ``typed_event`` gives the model of an event dict (agent events
included), as the Node SDK's generated types do (sdk/node/test/types.check.ts)."""

from __future__ import annotations

import json

import pytest

from codex_orchestrator.agents import transcript
from codex_orchestrator.records.agent_events import AgentCommand, AgentTokens
from codex_orchestrator.sdk import SdkError, typed_event


def _as_written(method: str, params: dict[str, object]) -> dict[str, object]:
    (event,) = transcript.from_notification(step="implement", call_id="tc-1", method=method, params=params)
    event.seq, event.ts, event.run_id = 7, "2026-12-06T00:00:00.000Z", "r"
    return dict(json.loads(event.model_dump_json()))  # as the CLI prints it on stdout


def test_agent_events_come_back_as_their_models() -> None:
    command = typed_event(
        _as_written(
            "item/completed",
            {
                "threadId": "th",
                "turnId": "tu",
                "item": {
                    "type": "commandExecution",
                    "id": "c1",
                    "command": "/bin/bash -lc 'make test'",
                    "cwd": "/w",
                    "status": "failed",
                    "exitCode": 2,
                    "aggregatedOutput": "boom",
                },
            },
        )
    )
    assert isinstance(command, AgentCommand)
    assert (command.command, command.status, command.exit_code, command.seq) == ("make test", "failed", 2, 7)
    usage = {
        "inputTokens": 5,
        "cachedInputTokens": 0,
        "outputTokens": 1,
        "reasoningOutputTokens": 0,
        "totalTokens": 6,
    }
    tokens = typed_event(
        _as_written(
            "thread/tokenUsage/updated",
            {"threadId": "th", "turnId": "tu", "tokenUsage": {"total": usage, "last": usage}},
        )
    )
    assert isinstance(tokens, AgentTokens) and tokens.total.total == 6


def test_an_event_that_does_not_fit_the_schema_is_named() -> None:
    with pytest.raises(SdkError, match=r"event 3 \(agent.command\) does not fit the schema"):
        typed_event({"seq": 3, "type": "agent.command", "tool_call_id": "x"})
