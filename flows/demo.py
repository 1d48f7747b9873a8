"""The demo: the real codex agent, driven by a scripted model, edits a scratch copy of examples/sample-repo
under the full gate, on Prefect.

It makes the scratch repository and a bare "review" remote, starts the scripted model (the stand-in for the LLM:
examples/agent_script.yaml, on loopback), writes a request file, and runs it. The agent step is the real codex
binary over ``codex app-server``: it reads files, applies a patch, runs the tests, and tries ``git ls-remote``,
which needs ``network`` beyond the profile, so it is asked; so are the ``git push`` steps. At a terminal the
person answers; without one a scripted reviewer answers through the public approval API and says so.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from codex_orchestrator.agents.scripted_model import ScriptedModel
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
AGENT_SCRIPT = EXAMPLES / "agent_script.yaml"
AGENT_PROMPT = "Add a multiply function with a test, and run the tests."
AGENT_COMMAND_CHARS = 72  # an agent's command as the demo's summary shows it
GIT_ID = ["-c", "user.name=Scripted Agent", "-c", "user.email=agent@example.invalid"]


def agent_script(python: str = sys.executable) -> list[Any]:
    """The scripted model's responses (examples/agent_script.yaml), ``{python}`` replaced by ``python``."""
    text = AGENT_SCRIPT.read_text(encoding="utf-8").replace("{python}", shlex.quote(python))
    script = yaml.safe_load(text)
    if not isinstance(script, list):
        raise RequestError(f"{AGENT_SCRIPT} is not a list of model responses")
    return script


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True)


def prepare(
    base: Path, codex_config: Mapping[str, str | int | float | bool], *, person_reviews: bool = False
) -> tuple[Path, Path]:
    """Scratch repo + bare remote under ``base``; returns (repo, request file). ``codex_config`` points the
    agent's codex at its model (the scripted one's ``provider_overrides()``). The review is answered by the
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
                # The real codex agent: every command and patch it asks for is a tool call of this run.
                # `network` is declared so the agent's sandbox has it: its network commands are then asked
                # (the step itself too, once), not refused outright.
                "name": "agent",
                "kind": "agent",
                "agent": "codex",
                "prompt": AGENT_PROMPT,
                "codex_config": dict(codex_config),
                "capabilities": ["network"],
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
    # The scripted model stands in for the LLM (no model service is reachable here); it lives as long as the run.
    with ScriptedModel(agent_script()) as model:
        return _run_demo(base, model)


def _run_demo(base: Path, model: ScriptedModel) -> int:
    at_terminal = stdin_is_tty()
    repo, request_file = prepare(base, model.provider_overrides(), person_reviews=at_terminal)
    say = _say
    say(f"demo: scratch repository {repo}")
    say(f"demo: request file {request_file}")
    say(f"demo: the agent is the real codex; its model is scripted ({AGENT_SCRIPT.name} at {model.base_url})")
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
    for line in agent_lines(manifest):
        say(line)
    for line in verification_lines(manifest):
        say(line)
    say(f"demo: manifest {manifest_path}")
    say(f"demo: events   {manifest_path.parent / 'events.jsonl'}")
    for name, path in SnapshotPaths(manifest_path.parents[3], manifest.task_id).files().items():
        say(f"demo: snapshot {name:<12} {path}")  # docs/metrics.md; `metrics --recompute` rebuilds them
    return code


def agent_lines(manifest: Manifest) -> list[str]:
    """Each agent step as the demo prints it: the agent, its turns, its tool calls by status, tokens, answer."""
    lines: list[str] = []
    for agent in manifest.agents:
        calls = ", ".join(f"{n} {s}" for s, n in agent.tool_calls_by_status.items()) or "none"
        lines.append(
            f"demo: agent    {agent.step}: {agent.agent} {agent.agent_version} {agent.status}, "
            f"{agent.turns} turn(s), tool calls {calls}, {agent.tokens.total} tokens"
        )
        if agent.final_message:
            lines.append(f"demo: agent    said: {' '.join(agent.final_message.split())}")
        if agent.error:
            lines.append(f"demo: agent    error: {agent.error}")
    return lines


def call_lines(manifest: Manifest) -> list[str]:
    """The tool-call summary, one line a call, each column as wide as its widest cell (ids differ in length).
    The agent's own tool calls follow their step's line, indented, by what the agent ran."""
    rows = {
        call.id: [
            call.id,
            call.milestone,
            call.step,
            call.status,
            f"attempts={len(call.attempts)}",
            f"approval={call.approval_source or '-'}",
            f"sandbox={call.sandbox.state}",
        ]
        for call in manifest.tool_calls
        if call.parent_call_id is None
    }
    columns = list(rows.values())
    widths = [max(len(row[i]) for row in columns) for i in range(len(columns[0]))] if columns else []
    lines = []
    for call in manifest.tool_calls:
        if call.parent_call_id is not None:  # a tool call the agent made: under its step, by what it ran
            lines.append(
                f"    agent: {call.status:<9} approval={call.approval_source or '-':<12} "
                f"{call.command[:AGENT_COMMAND_CHARS]}"
            )
            continue
        row = rows[call.id]
        lines.append("  " + " ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return lines


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
