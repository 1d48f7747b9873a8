"""The run as Prefect artifacts: a Markdown view of the manifest, a table of tool calls, a table of metrics.

Keys are stable per task (``<task>-manifest``, ``<task>-tool-calls``, ``<task>-metrics``) so the UI lines up
the versions of every run and milestone.
"""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from codex_orchestrator.records.manifest import Manifest
from codex_orchestrator.records.paths import artifact_key
from codex_orchestrator.run import RunOwner


def manifest_markdown(manifest: Manifest, manifest_uri: str, *, milestone: str) -> str:
    lines = [
        f"# Run `{manifest.run_id}` — **{manifest.status}**",
        "",
        f"Task `{manifest.task_id}` · milestone `{milestone}` · gate {'on' if manifest.gate_enabled else 'OFF'}",
        "",
        f"Manifest: [{manifest.run_dir}/manifest.json]({manifest_uri})",
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
    if manifest.instructions:
        lines += [
            "",
            "**Instructions**: " + ", ".join(f"`{i.path}` ({i.sha256[:12]})" for i in manifest.instructions),
        ]
    if manifest.error:
        lines += ["", f"**Error**: {manifest.error}"]
    return "\n".join(lines) + "\n"


def tool_call_rows(manifest: Manifest) -> list[dict[str, object]]:
    return [
        {
            "id": c.id,
            "milestone": c.milestone,
            "step": c.step,
            "kind": c.kind,
            "status": c.status,
            "exit_code": c.exit_code,
            "attempts": len(c.attempts),
            "approval": c.approval_source,
            "sandbox": c.sandbox.state,
            "duration_ms": c.duration_ms,
            "command": c.command[:120],
        }
        for c in manifest.tool_calls
    ]


def metrics_rows(manifest: Manifest) -> list[dict[str, object]]:
    data = manifest.metrics.model_dump()
    sources = data.pop("approvals_by_source")
    rows: list[dict[str, object]] = [{"metric": k, "value": v} for k, v in data.items()]
    rows += [{"metric": f"approvals_by_source.{k}", "value": v} for k, v in sorted(sources.items())]
    return rows


def publish(recorder: RunOwner, milestone: str) -> None:
    """Publish (a new version of) the three views of this run."""
    manifest = recorder.manifest()
    task = manifest.task_id
    uri = recorder.paths.manifest.resolve().as_uri()
    create_markdown_artifact(
        markdown=recorder.redact(manifest_markdown(manifest, uri, milestone=milestone)),
        key=artifact_key(task, "manifest"),
        description=f"Run manifest after {milestone}",
    )
    create_table_artifact(
        table=tool_call_rows(manifest) or [{"id": "—", "status": "no tool calls yet"}],
        key=artifact_key(task, "tool-calls"),
        description=f"Tool calls after {milestone}",
    )
    create_table_artifact(
        table=metrics_rows(manifest),
        key=artifact_key(task, "metrics"),
        description=f"Run metrics after {milestone}",
    )
