"""The review before hand-off, as data: what the reviewer is shown, what answers mean, and a reviewer
command's verdict JSON.

A person answers in the Prefect UI, with ``codex-orchestrator approve RUN_ID [--request-changes --comment ..]
[--skip]``, at the terminal or from Python; a reviewer command (an auto-reviewer) reads the review from the
file ``$CODEX_REVIEW_FILE`` names and prints ``{"verdict": "approved" | "changes-requested", "comments": ..}``.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.markdown import Markdown

from codex_orchestrator.verification.diagnostics import summary_line
from codex_orchestrator.verification.errors import VerificationError
from codex_orchestrator.verification.records import (
    DiagnosticsRecord,
    GuardrailRecord,
    SpecGuardRecord,
    Verdict,
)
from codex_orchestrator.verification.settings import ReviewPolicy

REVIEW_FILE_ENV = "CODEX_REVIEW_FILE"
# What a reviewer may write for each verdict (the form's choices, the CLI's flags, a reviewer's JSON).
VERDICT_WORDS: dict[str, Verdict] = {
    "approve": "approved",
    "approved": "approved",
    "request-changes": "changes-requested",
    "changes-requested": "changes-requested",
    "skip": "skipped",
    "skipped": "skipped",
}
MAX_OUTPUT_SHOWN = 4000


class ReviewVerdictError(VerificationError):
    """A reviewer command's output held no verdict this module understands."""


class ReviewPackage(BaseModel):
    """Everything the reviewer is shown; written as JSON for a reviewer command. Redacted, relative paths."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    task_id: str
    goal: str = ""
    policy: ReviewPolicy
    diff_stat: str
    files: list[dict[str, Any]] = Field(default_factory=list)
    guardrails: list[GuardrailRecord] = Field(default_factory=list)
    spec_guard: SpecGuardRecord | None = None
    command_output: str | None = None


def skip_allowed(policy: ReviewPolicy) -> bool:
    return policy != "required"


def package(
    *,
    run_id: str,
    task_id: str,
    goal: str,
    policy: ReviewPolicy,
    diagnostics: DiagnosticsRecord | None,
    guardrails: list[GuardrailRecord],
    spec_guard: SpecGuardRecord | None,
    command_output: str | None,
) -> ReviewPackage:
    diag = diagnostics or DiagnosticsRecord()
    return ReviewPackage(
        run_id=run_id,
        task_id=task_id,
        goal=goal,
        policy=policy,
        diff_stat=diag.error or summary_line(diag),
        files=[f.model_dump() for f in diag.files],
        guardrails=guardrails,
        spec_guard=spec_guard,
        command_output=command_output,
    )


def markdown(pkg: ReviewPackage, note: str | None = None) -> str:
    """The text above the review form (Prefect UI) and at the terminal."""
    lines = [
        "## Review this change before hand-off",
        "",
        f"**Task** `{pkg.task_id}` · **run** `{pkg.run_id}`" + (f" · {pkg.goal}" if pkg.goal else ""),
        "",
    ]
    if note:
        lines += [f"> {note}", ""]
    lines += [f"**Diff:** {pkg.diff_stat}", ""]
    if pkg.files:
        lines += ["| file | + | - | by |", "|---|---|---|---|"]
        for f in pkg.files[:50]:
            ins = "bin" if f.get("insertions") is None else f["insertions"]
            dels = "bin" if f.get("deletions") is None else f["deletions"]
            lines.append(f"| `{f['path']}` | {ins} | {dels} | {f['by']} |")
        if len(pkg.files) > 50:
            lines.append(f"| … {len(pkg.files) - 50} more | | | |")
        lines.append("")
    lines += ["**Guardrails**", "", "| guardrail | result | required | detail |", "|---|---|---|---|"]
    for g in pkg.guardrails:
        lines.append(f"| {g.name} | {g.result} | {'yes' if g.required else 'advisory'} | {g.detail or ''} |")
    lines.append("")
    if pkg.spec_guard is not None and pkg.spec_guard.findings:
        lines += ["**spec-guard findings**", ""]
        lines += [f"- `{f.file}` — {f.rule}: {f.message}" for f in pkg.spec_guard.findings[:20]]
        lines.append("")
    if pkg.command_output:
        shown = pkg.command_output[-MAX_OUTPUT_SHOWN:].replace("```", "'''")
        lines += ["**Review command output**", "", "```", shown, "```", ""]
    choices = "**approve**, **request-changes** (with comments)" + (
        " or **skip**" if skip_allowed(pkg.policy) else " (skipping is not allowed: policy `required`)"
    )
    lines.append(f"Choose {choices}; add your comments and name.")
    return "\n".join(lines) + "\n"


def verdict_of(word: str) -> Verdict:
    try:
        return VERDICT_WORDS[word.strip().lower()]
    except KeyError:
        raise ReviewVerdictError(
            f"unknown verdict {word!r} (allowed: approved, changes-requested, skipped)"
        ) from None


def parse_reviewer_output(output: str, policy: ReviewPolicy) -> tuple[Verdict, str | None]:
    """The verdict JSON a reviewer command printed: its last line that is a JSON object with ``verdict``."""
    for line in reversed(output.replace("\r", "\n").splitlines()):
        text = line.strip()
        if not text.startswith("{"):
            continue
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if not isinstance(data, dict) or "verdict" not in data:
            continue
        verdict = verdict_of(str(data["verdict"]))
        if verdict == "skipped" and not skip_allowed(policy):
            raise ReviewVerdictError("the reviewer skipped, which review policy 'required' does not allow")
        comments = data.get("comments")
        return verdict, (str(comments) if comments not in (None, "") else None)
    raise ReviewVerdictError('the reviewer printed no verdict JSON ({"verdict": ...})')


def package_from_state(state: Any) -> ReviewPackage:
    """The review as the run's records show it now (a ``RunState``): what a terminal reviewer is shown."""
    review = state.review
    return package(
        run_id=state.run_id,
        task_id=state.task_id,
        goal=state.goal,
        policy=review.policy if review is not None else "optional",
        diagnostics=state.diagnostics,
        guardrails=list(state.guardrails),
        spec_guard=state.spec_guard,
        command_output=review.command_output if review is not None else None,
    )


_PROMPT_CHOICES = {
    "a": "approve",
    "y": "approve",
    "approve": "approve",
    "r": "request-changes",
    "c": "request-changes",
    "request-changes": "request-changes",
    "s": "skip",
    "skip": "skip",
}


def prompt_review(pkg: ReviewPackage, *, stdin: TextIO, console: Console) -> tuple[str, str | None]:
    """Show the review at the terminal and read (verdict word, comments); end of input requests changes."""
    console.print(Markdown(markdown(pkg)))
    allowed = "approve (a) · request changes (r)" + (" · skip (s)" if skip_allowed(pkg.policy) else "")
    while True:
        console.print(f"[bold]{allowed}[/] > ", end="")
        line = stdin.readline()
        if not line:
            return "request-changes", "no answer (end of input)"
        choice = _PROMPT_CHOICES.get(line.strip().lower())
        if choice is None or (choice == "skip" and not skip_allowed(pkg.policy)):
            console.print(f"[yellow]please answer: {allowed}[/]")
            continue
        console.print("comments (optional) > ", end="")
        return choice, stdin.readline().strip() or None
