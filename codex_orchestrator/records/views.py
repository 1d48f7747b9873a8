"""Views of a run for people: the Markdown summary and the tables the Prefect UI shows, as pure functions.

Everything here is a function of a ``Manifest`` (plus where its file is); ``tasks/artifacts.py`` only publishes
the results. Durations read as ``4m 01.8s``, not milliseconds; the tool-calls table leads with what a reader
scans for (status, step, command), and a manifest path is text unless a link would really open.
"""

from __future__ import annotations

from codex_orchestrator.drift import summary as drift_summary
from codex_orchestrator.records.manifest import Manifest
from codex_orchestrator.records.paths import artifact_key

MS_PER_S = 1000.0
S_PER_MIN = 60
S_PER_H = 3600
COMMAND_COLUMN_CHARS = 120
# Links that open from a browser showing the Prefect UI; a file:// URL does not (browsers block it there).
_OPENABLE_SCHEMES = ("http://", "https://")

# What each metric counts, shown beside it (the UI has no other place to say it).
METRIC_MEANINGS: dict[str, str] = {
    "tool_calls": "tool calls made (steps and guardrails)",
    "succeeded": "tool calls that succeeded",
    "failed": "tool calls that failed",
    "denied": "tool calls refused by the policy or a human",
    "timed_out": "tool calls ended by their timeout",
    "attempts": "attempts in all, retries included",
    "retries": "attempts after the first of a call",
    "cache_hits": "calls approved from the session cache (approve-for-session)",
    "cache_misses": "calls the session cache could not approve",
    "duration_ms": "the run's wall-clock time",
    "tool_call_ms_total": "time spent inside tool calls, summed",
    "guardrails_passed": "verification guardrails that passed",
    "guardrails_failed": "verification guardrails that failed",
}
# Durations are shown as time, so their names lose the unit suffix of the manifest field.
_DURATION_LABELS = {"duration_ms": "duration", "tool_call_ms_total": "tool_call_time_total"}


def format_duration(ms: float | None) -> str:
    """``0.24s``, ``12.3s``, ``4m 01.8s``, ``2h 03m 04s``; ``—`` when unknown."""
    if ms is None:
        return "—"
    if ms < MS_PER_S:
        return f"{ms / MS_PER_S:.2f}s"
    tenths = round(ms / 100)  # round once, so 59.96 s reads 1m 00.0s rather than 60.0s
    seconds, tenth = divmod(tenths, 10)
    if seconds < S_PER_MIN:
        return f"{seconds}.{tenth}s"
    if seconds < S_PER_H:
        minutes, sec = divmod(seconds, S_PER_MIN)
        return f"{minutes}m {sec:02d}.{tenth}s"
    hours, rest = divmod(round(ms / MS_PER_S), S_PER_H)
    minutes, sec = divmod(rest, S_PER_MIN)
    return f"{hours}h {minutes:02d}m {sec:02d}s"


def milestone_phrase(milestone: str) -> str:
    """How far the run had got when a view was published: ``the end of the run`` or ``the exec milestone``."""
    return "the end of the run" if milestone == "final" else f"the {milestone} milestone"


def manifest_reference(manifest_path: str, manifest_url: str | None = None) -> str:
    """The manifest as Markdown: a link only when ``manifest_url`` opens from a browser, else the path as text."""
    if manifest_url is not None and manifest_url.startswith(_OPENABLE_SCHEMES):
        return f"[{manifest_path}]({manifest_url})"
    return f"`{manifest_path}`"


def manifest_markdown(
    manifest: Manifest, manifest_path: str, *, milestone: str, manifest_url: str | None = None
) -> str:
    lines = [
        f"# Run `{manifest.run_id}` — **{manifest.status}**",
        "",
        f"Task `{manifest.task_id}` · as of {milestone_phrase(milestone)} · "
        f"gate {'on' if manifest.gate_enabled else 'OFF'}",
        "",
        f"Manifest: {manifest_reference(manifest_path, manifest_url)} (on the machine that ran the run)",
        "",
    ]
    if manifest.goal:
        lines += [f"> {manifest.goal}", ""]
    lines += ["| milestone | status | started | finished |", "|---|---|---|---|"]
    lines += [
        f"| {m.name} | {m.status} | {m.started_at or ''} | {m.finished_at or ''} |"
        for m in manifest.milestones
    ]
    lines += [
        "",
        f"**Approvals**: {len(manifest.approvals)} asked · session cache "
        f"{manifest.approval_cache.hits} hits / {manifest.approval_cache.misses} misses",
        "",
    ]
    for approval in manifest.approvals:
        lines.append(
            f"- `{approval.approval_id}` ({approval.purpose}) on `{approval.tool_call_id}`: **{approval.outcome}**"
            f" by {approval.answered_by or '—'}{' for session' if approval.for_session else ''}"
            f"{f' — {approval.answer_reason}' if approval.answer_reason else ''}"
        )
    if manifest.pending_approval is not None:
        lines += [
            "",
            f"⏸ waiting for approval `{manifest.pending_approval.approval_id}`: "
            f"{manifest.pending_approval.reason}",
        ]
    for agent in manifest.agents:
        calls = ", ".join(f"{n} {s}" for s, n in agent.tool_calls_by_status.items()) or "none"
        lines += [
            "",
            f"**Agent** `{agent.step}`: {agent.agent} {agent.agent_version} **{agent.status}**, "
            f"{agent.turns} turn(s), tool calls {calls}, {agent.tokens.total} tokens "
            f"(transcript: artifact `{artifact_key(manifest.task_id, f'agent-{agent.step}')}`)",
        ]
    if manifest.instructions:
        lines += [
            "",
            "**Instructions**: " + ", ".join(f"`{i.path}` ({i.sha256[:12]})" for i in manifest.instructions),
        ]
    if manifest.drift is not None and manifest.drift.status == "drifted":
        lines += ["", f"**Instruction drift** ({manifest.drift.decision}): {drift_summary(manifest.drift)}"]
    if manifest.error:
        lines += ["", f"**Error**: {manifest.error}"]
    return "\n".join(lines) + "\n"


def tool_call_rows(manifest: Manifest) -> list[dict[str, object]]:
    """One row per tool call; status, step and command first, so they are on screen without scrolling."""
    return [
        {
            "status": c.status,
            "step": c.step,
            "command": c.command[:COMMAND_COLUMN_CHARS],
            "exit_code": c.exit_code,
            "duration": format_duration(c.duration_ms),
            "attempts": len(c.attempts),
            "approval": c.approval_source,
            "sandbox": c.sandbox.state,
            "milestone": c.milestone,
            "kind": c.kind,
            "id": c.id,
        }
        for c in manifest.tool_calls
    ]


def metrics_rows(manifest: Manifest) -> list[dict[str, object]]:
    """``metric | value | meaning`` rows; durations formatted, approvals split by source."""
    data = manifest.metrics.model_dump()
    sources: dict[str, int] = data.pop("approvals_by_source")
    rows: list[dict[str, object]] = [
        {
            "metric": _DURATION_LABELS.get(name, name),
            "value": format_duration(value) if name in _DURATION_LABELS else value,
            "meaning": METRIC_MEANINGS.get(name, ""),
        }
        for name, value in data.items()
    ]
    rows += [
        {
            "metric": f"approvals_by_source.{source}",
            "value": count,
            "meaning": f"tool calls whose approval source was {source}",
        }
        for source, count in sorted(sources.items())
    ]
    return rows


def descriptions(manifest: Manifest, milestone: str) -> dict[str, str]:
    """The artifacts' descriptions by view, saying what each is and how far the run had got."""
    when = milestone_phrase(milestone)
    return {
        "manifest": f"Summary of run {manifest.run_id}: status, milestones and approvals, as of {when}",
        "tool-calls": f"Every tool call of run {manifest.run_id} (status, command, exit code, duration), as of {when}",
        "metrics": f"Counters of run {manifest.run_id} (tool calls, attempts, approvals, time), as of {when}",
    }
