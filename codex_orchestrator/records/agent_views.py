"""An agent step for people: its transcript as Markdown and a table of the tool calls its agent made (pure).

Functions of the step's summary (``Manifest.agents``), its ``agent.*`` events and its agent's call records;
tasks/agent_artifacts.py publishes them as Prefect artifacts. The transcript reads top to bottom like the
agent's session: each turn, what the agent said, the commands it ran with their output, the patches with their
diffs, plan updates, and what it was refused. Long outputs and diffs are cut for the page (the events keep
more, within their own budget).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from codex_orchestrator.records.manifest import AgentStepRecord, ToolCallRecord
from codex_orchestrator.records.views import COMMAND_COLUMN_CHARS, format_duration

# The transcript is a page to read, not an archive: each output or diff shows this much of its head and tail.
OUTPUT_SHOWN_CHARS = 2000
DIFF_SHOWN_CHARS = 8000
_AGENT_TYPE_MARK = '"type":"agent.'
_ITEM_MARK = {
    "completed": "",
    "failed": " — **failed**",
    "declined": " — **declined**",
    "in-progress": " — running",
}


def step_events(events_path: Path, call_id: str) -> list[dict[str, Any]]:
    """The ``agent.*`` events of one agent step, in log order (lines of other events are not parsed)."""
    found: list[dict[str, Any]] = []
    mark = f'"tool_call_id":{json.dumps(call_id)}'
    try:
        handle = events_path.open(encoding="utf-8")
    except FileNotFoundError:
        return found
    with handle:
        for line in handle:
            if _AGENT_TYPE_MARK not in line or mark not in line or not line.endswith("\n"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("tool_call_id") == call_id:
                found.append(event)
    return found


def transcript_markdown(agent: AgentStepRecord, events: Iterable[Mapping[str, Any]]) -> str:
    """The step's session as Markdown: a header with the summary, then each turn in order."""
    by_status = ", ".join(f"{n} {s}" for s, n in agent.tool_calls_by_status.items()) or "none"
    tokens = agent.tokens
    lines = [
        f"# Agent step `{agent.step}` — **{agent.status}**",
        "",
        f"{agent.agent or 'agent'} {agent.agent_version} · thread `{agent.thread_id or '—'}` · "
        f"{agent.turns} turn(s){f' · resumed {agent.resumed} time(s)' if agent.resumed else ''}",
        "",
        f"**Tool calls** through the gate: {len(agent.tool_calls)} ({by_status}) · "
        f"**tokens** {tokens.total} (input {tokens.input}, cached {tokens.cached_input}, "
        f"output {tokens.output}, reasoning {tokens.reasoning_output})",
    ]
    if agent.error:
        lines += ["", f"**Error**: {agent.error}"]
    turn_no = 0
    for event in events:
        kind = event.get("type")
        if kind == "agent.started" and event.get("resumed"):
            lines += ["", f"*Resumed thread `{event.get('thread_id')}`.*"]
        elif kind == "agent.turn.started":
            turn_no += 1
            lines += ["", f"## Turn {turn_no}", ""]
        else:
            lines += _entry(event)
    return "\n".join(lines).rstrip("\n") + "\n"


def _entry(event: Mapping[str, Any]) -> list[str]:
    kind = event.get("type")
    status = _ITEM_MARK.get(str(event.get("status")), f" — {event.get('status')}")
    if kind == "agent.message":
        return ["", "**Agent:**", "", *(f"> {line}" for line in str(event.get("text", "")).splitlines()), ""]
    if kind == "agent.reasoning":
        return [f"*Reasoning: {_one_line(str(event.get('summary', '')))}*", ""]
    if kind == "agent.plan":
        steps = [
            f"- [{'x' if s.get('status') == 'completed' else ' '}] {s.get('step')}" for s in event["steps"]
        ]
        why = f" — {event['explanation']}" if event.get("explanation") else ""
        return [f"**Plan**{why}", "", *steps, ""]
    if kind == "agent.command":
        exit_code = event.get("exit_code")
        facts = [f"exit {exit_code}" if exit_code is not None else None, _duration(event.get("duration_ms"))]
        head = f"**$ `{_one_line(str(event.get('command', '')))}`**{status}"
        where = f" in `{event.get('cwd')}`" if event.get("cwd") not in ("", ".", None) else ""
        detail = " · ".join(f for f in facts if f)
        out = [f"{head}{where}{f' ({detail})' if detail else ''}"]
        output = str(event.get("output") or "")
        if output:
            out += ["", "```text", _cut(output, OUTPUT_SHOWN_CHARS), "```"]
        return [*out, ""]
    if kind == "agent.file_change":
        out = []
        for change in event.get("changes") or []:
            moved = f" → `{change['move_path']}`" if change.get("move_path") else ""
            out += [f"**Patch** `{change.get('path')}` ({change.get('kind')}){moved}{status}", ""]
            out += ["```diff", _cut(str(change.get("diff", "")), DIFF_SHOWN_CHARS), "```", ""]
        return out
    if kind == "agent.tool":
        detail = f": {_one_line(str(event['detail']))}" if event.get("detail") else ""
        return [f"**Tool** `{event.get('tool')}`{status}{detail}", ""]
    if kind == "agent.error":
        retry = " (retrying)" if event.get("will_retry") else ""
        return [f"⚠ **Error**{retry}: {_one_line(str(event.get('message', '')))}", ""]
    if kind == "agent.turn.finished":
        error = f": {event['error']}" if event.get("error") else ""
        return [
            f"*Turn {event.get('status')}{error} ({_duration(event.get('duration_ms')) or 'time unknown'})*"
        ]
    if kind == "agent.finished":
        error = f": {event['error']}" if event.get("error") else ""
        return ["", f"**Agent {event.get('status')}** after {event.get('turns')} turn(s){error}"]
    return []  # agent.tokens: summed in the header


def tool_call_rows(agent: AgentStepRecord, calls: Iterable[ToolCallRecord]) -> list[dict[str, object]]:
    """One row per tool call the agent made, status and command first (as the run's tool-call table)."""
    own = {c.id: c for c in calls if c.parent_call_id == agent.call_id}
    rows: list[dict[str, object]] = []
    for ref in agent.tool_calls:
        call = own.get(ref.id)
        rows.append(
            {
                "status": ref.status,
                "command": ref.command[:COMMAND_COLUMN_CHARS],
                "kind": ref.kind,
                "approval": ref.approval_source,
                "exit_code": call.exit_code if call else None,
                "duration": format_duration(call.duration_ms if call else None),
                "sandbox": call.sandbox.state if call else None,
                "why": ref.error or "",
                "id": ref.id,
            }
        )
    return rows


def _duration(ms: Any) -> str | None:
    return format_duration(float(ms)) if isinstance(ms, int | float) else None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cut(text: str, limit: int) -> str:
    text = text.rstrip("\n").replace("```", "`\u200b``")  # a fence inside the output must not close ours
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n… {len(text) - 2 * half} characters not shown …\n{text[-half:]}"
