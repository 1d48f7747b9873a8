"""The hand-off summary: a finished run's status, guardrails, review verdict and where its records are, as
Markdown for a Prefect artifact (``<task>-handoff``). Pure: a function of the manifest and the record paths."""

from __future__ import annotations

from collections.abc import Sequence

from codex_orchestrator.records.manifest import Manifest
from codex_orchestrator.verification.diagnostics import summary_line


def handoff_markdown(manifest: Manifest, records: Sequence[tuple[str, str]]) -> str:
    """``records``: (what, workspace-relative path) of each record to point at, in order."""
    lines = [
        f"# Hand-off: run `{manifest.run_id}` — **{manifest.status}** (exit {manifest.exit_code})",
        "",
        f"Task `{manifest.task_id}`" + (f" · {manifest.goal}" if manifest.goal else ""),
        "",
    ]
    diag = manifest.diagnostics
    if diag is not None:
        change = diag.error or summary_line(diag)
        lines += [
            f"**Change**: {change}"
            + (f" · base `{diag.base_commit[:12]}`" if diag.base_commit else "")
            + (f" → head `{diag.head_commit[:12]}`" if diag.head_commit else ""),
            "",
        ]
        if diag.files:
            lines.append(
                "Edited by steps: "
                + (", ".join(f"`{p}`" for p in diag.edited_files) or "—")
                + " · changed by commands: "
                + (", ".join(f"`{p}`" for p in diag.command_files[:20]) or "—")
            )
            lines.append("")
        if diag.tools:
            lines += ["Tools: " + " · ".join(f"{k} `{v}`" for k, v in diag.tools.items()), ""]
    lines += ["| guardrail | result | required | detail |", "|---|---|---|---|"]
    for g in manifest.guardrails:
        lines.append(
            f"| {g.name} | **{g.result}** | {'yes' if g.required else 'advisory'} | {g.detail or ''} |"
        )
    if not manifest.guardrails:
        lines.append("| — | no guardrails | | |")
    lines.append("")
    spec = manifest.spec_guard
    if spec is not None and spec.findings:
        lines += ["**spec-guard findings**", ""]
        lines += [f"- `{f.file}` — {f.rule}: {f.message}" for f in spec.findings[:20]]
        lines.append("")
    review = manifest.review
    if review is not None:
        lines.append(
            f"**Review** (policy `{review.policy}`): **{review.verdict or review.status}**"
            f" · source {review.source or '—'} · by {review.by or '—'} via {review.answered_by or '—'}"
            f" · at {review.answered_at or '—'}"
        )
        if review.comments:
            lines += ["", f"> {review.comments}"]
        lines.append("")
    lines += ["**Records** (relative to the workspace, on the machine that ran the run)", ""]
    lines += [f"- {what}: `{path}`" for what, path in records]
    return "\n".join(lines) + "\n"
