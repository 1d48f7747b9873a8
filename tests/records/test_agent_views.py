"""An agent step for people: the transcript Markdown and the table of its agent's tool calls, from a run's real
records; published as Prefect artifacts on a real Prefect server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from codex_orchestrator.records import agent_views
from codex_orchestrator.records.manifest import load_manifest
from codex_orchestrator.records.views import manifest_markdown
from codex_orchestrator.run import RunOwner
from tasks.agent_artifacts import publish_agents
from tests.records.test_agent_fold import STEP_CALL, _agent_turn, _call, _notify, _owner


def _run(tmp_path: Path) -> RunOwner:
    owner = _owner(tmp_path)
    _call(owner, STEP_CALL, kind="agent", command="codex: add multiply", status="succeeded")
    _agent_turn(owner, "turn-1", final="Added `multiply`.\nTests pass.")
    _notify(
        owner,
        "item/completed",
        {
            "threadId": "th",
            "turnId": "turn-1",
            "item": {
                "type": "commandExecution",
                "id": "c9",
                "command": "curl example.org",
                "cwd": "/elsewhere",
                "status": "declined",
                "commandActions": [],
            },
        },
    )
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
        f"{STEP_CALL}.call-9-cc",
        kind="shell",
        command="curl example.org",
        status="denied",
        parent=STEP_CALL,
    )
    owner.finish("succeeded", 0)
    return owner


def test_the_transcript_reads_like_the_session(tmp_path: Path) -> None:
    owner = _run(tmp_path)
    manifest = load_manifest(owner.paths.manifest)
    (agent,) = manifest.agents
    events = agent_views.step_events(owner.paths.events, STEP_CALL)
    assert events and all(e["type"].startswith("agent.") for e in events)
    text = agent_views.transcript_markdown(agent, events)
    assert text.startswith("# Agent step `implement` — **completed**\n")
    assert "codex 0.163.0" in text and "1 turn(s)" in text
    assert "**Tool calls** through the gate: 2 (1 denied, 1 succeeded)" in text
    assert "## Turn 1" in text
    assert "**$ `cat calc.py`** in `/w` (exit 0)" in text and "```text\ndef add\n```" in text
    assert "**Patch** `calc.py` (update)" in text and "```diff\n+def multiply\n```" in text
    assert "**$ `curl example.org`** — **declined** in `/elsewhere`" in text
    assert "> Added `multiply`.\n> Tests pass." in text
    assert "**Agent completed** after 1 turn(s)" in text
    summary = manifest_markdown(manifest, "manifest.json", milestone="final")
    assert (
        "**Agent** `implement`: codex 0.163.0 **completed**, 1 turn(s), tool calls 1 denied, 1 succeeded"
        in summary
        and "(transcript: artifact `task-a-agent-implement`)" in summary
    )
    rows = agent_views.tool_call_rows(agent, manifest.tool_calls)
    assert [(r["status"], r["command"]) for r in rows] == [
        ("succeeded", "cat calc.py"),
        ("denied", "curl example.org"),
    ]
    assert list(rows[0])[:2] == ["status", "command"]


def test_outputs_are_cut_for_the_page_and_fences_cannot_break_out() -> None:
    cut = agent_views._cut("a" * 10 + "```" + "b" * 10_000, 100)
    assert "characters not shown" in cut and len(cut) < 200
    assert "```" not in agent_views._cut("x```y", 100)


def test_the_artifacts_are_published(tmp_path: Path, prefect_server: str) -> None:
    owner = _run(tmp_path)
    manifest = load_manifest(owner.paths.manifest)

    @flow(name="publish-agent-artifacts")
    def publish() -> None:
        publish_agents(manifest, owner.paths.events, owner.redact)

    publish()

    async def read() -> dict[str, object]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(
                        any_=["task-a-agent-implement", "task-a-agent-implement-tool-calls"]
                    )
                )
            )
            return {a.key or "": a.data for a in found}

    data = asyncio.run(read())
    assert "## Turn 1" in str(data["task-a-agent-implement"])
    assert "curl example.org" in str(data["task-a-agent-implement-tool-calls"])
