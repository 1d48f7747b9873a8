"""Each agent step as Prefect artifacts: its transcript (``<task>-agent-<step>``, Markdown) and the tool calls its
agent made (``<task>-agent-<step>-tool-calls``, a table). What they say is ``records/agent_views.py``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from codex_orchestrator.records import agent_views
from codex_orchestrator.records.manifest import Manifest
from codex_orchestrator.records.paths import artifact_key


def publish_agents(manifest: Manifest, events_path: Path, redact: Callable[[str], str]) -> None:
    """A new version of both artifacts for every agent step of ``manifest``."""
    for agent in manifest.agents:
        publish_agent(manifest, agent.call_id, events_path, redact)


def publish_agent(manifest: Manifest, call_id: str, events_path: Path, redact: Callable[[str], str]) -> None:
    """Both artifacts of the agent step whose call is ``call_id`` (nothing if the manifest has no such step).

    Call it from the agent step's own task to attach them to its task run as well."""
    agent = next((a for a in manifest.agents if a.call_id == call_id), None)
    if agent is None:
        return
    view = f"agent-{agent.step}"
    events = agent_views.step_events(events_path, call_id)
    create_markdown_artifact(
        markdown=redact(agent_views.transcript_markdown(agent, events)),
        key=artifact_key(manifest.task_id, view),
        description=f"Transcript of agent step {agent.step} of run {manifest.run_id}: {agent.status}, "
        f"{agent.turns} turn(s), {len(agent.tool_calls)} tool call(s)",
    )
    rows = agent_views.tool_call_rows(agent, manifest.tool_calls)
    create_table_artifact(
        table=[{k: redact(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows]
        or [{"status": "the agent made no tool calls"}],
        key=artifact_key(manifest.task_id, f"{view}-tool-calls"),
        description=f"Tool calls the agent of step {agent.step} made through the gate, run {manifest.run_id}",
    )
