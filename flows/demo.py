"""The demo: a scripted agent edits a scratch copy of examples/sample-repo under the full gate, on Prefect.

It makes the scratch repository and a bare "review" remote, writes a request file, and runs it. One step
needs the ``network`` capability (``git push``), so an approval is asked: at a terminal the person answers;
without one a scripted reviewer answers through the public approval API and says so.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from codex_orchestrator.approvals import Decision
from codex_orchestrator.errors import RequestError
from codex_orchestrator.records.manifest import Manifest, load_manifest
from codex_orchestrator.records.snapshots import SnapshotPaths
from codex_orchestrator.request import load_request
from codex_orchestrator.sandbox import probe
from codex_orchestrator.terminal import stdin_is_tty
from codex_orchestrator.verification.diagnostics import summary_line
from flows.runner import Reviewer, auto_reviewer, run_request, terminal_review, terminal_reviewer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GIT_ID = ["-c", "user.name=Scripted Agent", "-c", "user.email=agent@example.invalid"]


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True)


def prepare(base: Path, *, person_reviews: bool = False) -> tuple[Path, Path]:
    """Scratch repo + bare remote under ``base``; returns (repo, request file). The review is answered by the
    scripted reviewer command, or (``person_reviews``) by the person at the terminal."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    root = (base / stamp).resolve()
    repo = root / "repo"
    shutil.copytree(EXAMPLES / "sample-repo", repo)
    _git("init", "-q", "-b", "main", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-qm", "Initial import", cwd=repo)
    remote = root / "review.git"
    _git("init", "-q", "--bare", str(remote), cwd=root)
    _git("remote", "add", "review", str(remote), cwd=repo)
    py = sys.executable
    push = "git push -q review HEAD:refs/heads/agent/multiply"
    commit = "git -c user.name='Scripted Agent' -c user.email=agent@example.invalid commit -qam"
    request = {
        "task": "demo-add-multiply",
        "workspace": "repo",
        "goal": "Add a multiply function with a test, record it in the changelog, publish for review.",
        "approval_policy": "on-request",
        "profile": ["read", "edit", "run"],
        "sandbox": "workspace-write" if probe().available else "none",
        "approval_timeout_s": 600,
        "retry": {"max_attempts": 3, "base_delay_s": 0.2, "max_delay_s": 2.0},
        # The step graph: the agent and the cache warm-up run side by side once the repository is inspected;
        # everything after them is a chain (commits and pushes must happen in order).
        "steps": [
            {"name": "inspect", "command": "git status --short && ls"},
            {
                "name": "agent",
                "kind": "agent",
                "command": [py, str(EXAMPLES / "scripted_agent.py"), "add a multiply function with tests"],
                "needs": ["inspect"],
            },
            {
                "name": "warm-up",
                "command": "if [ -f .git/co-warm ]; then echo cache warm; "
                "else touch .git/co-warm; echo 'cache cold, try again' >&2; exit 75; fi",
                "needs": ["inspect"],
            },
            {
                "name": "commit",
                "command": f"git add -A && {commit} 'Add multiply'",
                "needs": ["agent", "warm-up"],
            },
            {"name": "publish", "command": push, "needs": ["commit"]},
            {
                "name": "changelog",
                "kind": "edit",
                "path": "CHANGELOG.md",
                "append": True,
                "content": "\n- Add `multiply` (scripted agent)\n",
                "needs": ["publish"],
            },
            {
                "name": "commit-changelog",
                "command": f"{commit} 'Changelog: multiply'",
                "needs": ["changelog"],
            },
            {"name": "publish-again", "command": push, "needs": ["commit-changelog"]},
        ],
        "guardrails": [
            {"name": "lint", "command": [py, "-m", "ruff", "check", "--no-cache", "--quiet", "."]},
            {"name": "tests", "command": [py, "-m", "pytest", "-q", "-p", "no:cacheprovider"]},
            # An eval of the change, advisory: reported in the hand-off, never fails the run by itself.
            {
                "name": "eval",
                "command": [py, "-c", "import calc; assert calc.multiply(6, 7) == 42"],
                "required": False,
            },
        ],
        # Before hand-off a review approves the change: the scripted stand-in for `codex review` prints its
        # review, and the scripted auto-reviewer (without a TTY) or the person at the terminal decides.
        "verification": {
            "spec_guard": {"required": True},  # code changed: the changelog (a *.md) must have changed too
            "review": {
                "policy": "required",
                "command": [py, str(EXAMPLES / "scripted_reviewer.py"), "review"],
                **(
                    {}
                    if person_reviews
                    else {"reviewer": [py, str(EXAMPLES / "scripted_reviewer.py"), "verdict"]}
                ),
            },
        },
    }
    request_file = root / "request.yaml"
    request_file.write_text(yaml.safe_dump(request, sort_keys=False), encoding="utf-8")
    return repo, request_file


def run_demo(base: Path) -> int:
    at_terminal = stdin_is_tty()
    repo, request_file = prepare(base, person_reviews=at_terminal)
    say = _say
    say(f"demo: scratch repository {repo}")
    say(f"demo: request file {request_file}")
    load_request(request_file)  # a bad request is refused before anything starts
    reviewer: Reviewer
    if at_terminal:
        reviewer = terminal_reviewer
        say("demo: approvals and the review before hand-off will be asked here, at the terminal")
    else:
        reviewer = auto_reviewer(Decision.APPROVE_FOR_SESSION, say)
        say("demo: no TTY, so a scripted reviewer will answer approvals through the public API")
        say("demo: and the review before hand-off is answered by the scripted reviewer command")
    code, manifest_path = run_request(
        request_file, reviewer=reviewer, say=say, review_answerer=terminal_review if at_terminal else None
    )
    try:
        manifest = load_manifest(manifest_path)
    except Exception as exc:
        raise RequestError(f"the demo run left no readable manifest: {exc}") from exc
    say("")
    say(f"demo: run {manifest.run_id} {manifest.status} (exit {code})")
    for line in call_lines(manifest):
        say(line)
    say(f"  approval cache: {manifest.approval_cache.hits} hit(s), {manifest.approval_cache.misses} miss(es)")
    for line in verification_lines(manifest):
        say(line)
    say(f"demo: manifest {manifest_path}")
    say(f"demo: events   {manifest_path.parent / 'events.jsonl'}")
    for name, path in SnapshotPaths(manifest_path.parents[3], manifest.task_id).files().items():
        say(f"demo: snapshot {name:<12} {path}")  # docs/metrics.md; `metrics --recompute` rebuilds them
    return code


def call_lines(manifest: Manifest) -> list[str]:
    """The tool-call summary, one line a call, each column as wide as its widest cell (ids differ in length)."""
    rows = [
        [
            call.id,
            call.milestone,
            call.step,
            call.status,
            f"attempts={len(call.attempts)}",
            f"approval={call.approval_source or '-'}",
            f"sandbox={call.sandbox.state}",
        ]
        for call in manifest.tool_calls
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return [
        "  " + " ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def verification_lines(manifest: Manifest) -> list[str]:
    """What verification found, as the demo prints it: the change, each guardrail, the review."""
    lines: list[str] = []
    if manifest.diagnostics is not None:
        d = manifest.diagnostics
        lines.append(
            f"demo: change   {d.error or summary_line(d)} (edits: {', '.join(d.edited_files) or '-'})"
        )
    for g in manifest.guardrails:
        lines.append(
            f"  guardrail {g.name:<11} {g.result:<8} {'required' if g.required else 'advisory'}"
            + (f"  {g.detail}" if g.detail and g.result != "passed" else "")
        )
    review = manifest.review
    if review is not None:
        lines.append(
            f"demo: review   {review.verdict} (source {review.source}, by {review.by or '-'})"
            + (f": {review.comments}" if review.comments else "")
        )
    return lines


def _say(text: str) -> None:
    # One write per line: print() writes the text and its newline separately, and a reviewer thread's line
    # then ran into Prefect's log lines written from other threads in between.
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
