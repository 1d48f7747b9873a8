"""The run as Prefect artifacts: a Markdown view of the manifest, a table of tool calls, a table of metrics, and
each agent step's transcript (tasks/agent_artifacts.py).

Keys are stable per task (``<task>-manifest``, ``<task>-tool-calls``, ``<task>-metrics``) so the UI lines up
the versions of every run and milestone. What the views say is ``codex_orchestrator.records.views``; this
module only publishes them.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from codex_orchestrator.records import views
from codex_orchestrator.records.paths import artifact_key, relative_to_workspace
from codex_orchestrator.records.snapshots import SnapshotPaths, snapshot_table
from codex_orchestrator.run import RunOwner
from codex_orchestrator.verification.handoff import handoff_markdown
from tasks.agent_artifacts import publish_agents

# The task's metrics snapshots are published when they are written: by the telemetry milestone and at the end.
_SNAPSHOT_MILESTONES = ("telemetry", "final")
# Agent transcripts change only while steps run: published after exec and at the end.
_AGENT_MILESTONES = ("exec", "final")


def publish(recorder: RunOwner, milestone: str) -> None:
    """Publish (a new version of) the three views of this run."""
    manifest = recorder.manifest()
    task = manifest.task_id
    described = views.descriptions(manifest, milestone)
    markdown = views.manifest_markdown(manifest, str(recorder.paths.manifest.resolve()), milestone=milestone)
    create_markdown_artifact(
        markdown=recorder.redact(markdown),
        key=artifact_key(task, "manifest"),
        description=described["manifest"],
    )
    create_table_artifact(
        table=views.tool_call_rows(manifest) or [{"status": "no tool calls yet"}],
        key=artifact_key(task, "tool-calls"),
        description=described["tool-calls"],
    )
    create_table_artifact(
        table=views.metrics_rows(manifest),
        key=artifact_key(task, "metrics"),
        description=described["metrics"],
    )
    if milestone in _SNAPSHOT_MILESTONES:
        publish_snapshots(recorder)
    if milestone in _AGENT_MILESTONES:
        publish_agents(manifest, recorder.paths.events, recorder.redact)


def publish_snapshots(recorder: RunOwner) -> None:
    """Each of the task's snapshot files (records/snapshots.py) as a table artifact, ``<task>-<snapshot>``."""
    paths = SnapshotPaths(Path(recorder.ref.runs_dir), recorder.ref.task_id)
    for name, path in paths.files().items():
        if not path.exists():
            continue
        document = json.loads(path.read_bytes())
        create_table_artifact(
            table=snapshot_table(name, document),
            key=artifact_key(recorder.ref.task_id, f"snapshot-{name}"),
            description=f"Snapshot `{name}` of task {recorder.ref.task_id} as of {document.get('generated_at')}: "
            f"{path.name}, recomputable with `codex-orchestrator metrics --recompute`",
        )


def publish_handoff(owner: RunOwner, extra_records: list[tuple[str, str]] | None = None) -> None:
    """The hand-off summary of a finished run (``<task>-handoff``): status, guardrails, review, records."""
    manifest = owner.manifest()
    paths = owner.paths
    records = [
        (what, relative_to_workspace(path, owner.workspace))
        for what, path in (
            ("manifest", paths.manifest),
            ("events", paths.events),
            ("traces", paths.traces),
            ("task metrics", paths.task_metrics),
        )
    ]
    create_markdown_artifact(
        markdown=owner.redact(handoff_markdown(manifest, [*records, *(extra_records or [])])),
        key=artifact_key(manifest.task_id, "handoff"),
        description=f"Hand-off of run {manifest.run_id}: {manifest.status}, guardrails, review verdict, records",
    )
