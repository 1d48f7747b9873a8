"""Read-only git through the real gate against a repository whose config runs programs: policy untrusted,
profile [read], run sandbox mode none, so for plain reads the classification and the environment it carries
are the only barrier (status, diff, show and blame get the read sandbox, which that mode does not turn off).

The hostile repository sets core.fsmonitor, core.pager, pager.<cmd>, diff.external, a filter driver and an
alias to a script that leaves a marker file outside the workspace; a hostile global config does the same.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from codex_orchestrator.approvals import Decision
from codex_orchestrator.commands import GIT_NEUTRAL_ENV, call_facts, spawn_env
from codex_orchestrator.policy import ApprovalPolicy, Capability, ToolKind
from codex_orchestrator.sandbox import SandboxMode, probe
from tests.test_gate import ScriptedApprover, finish, make_gate, shell

READ_ONLY_GIT = [
    "git ls-files",
    "git log -1",
    "git log -p --no-textconv -1",
    "git show --stat",
    "git grep -n def",
]
NOT_READ_ONLY_GIT = [
    "git st",
    "git -C ../elsewhere ls-files",
    "git diff --ext-diff",
    "git show --textconv",
]
# Read-only only in the read sandbox (read_sandbox.py; tests/test_read_sandbox.py has the whole corpus).
READ_SANDBOX_GIT = ["git status", "git diff", "git show", "git blame calc.py"]


@pytest.fixture
def hostile(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``workspace`` with hostile git config; returns the directory where markers appear."""
    markers = tmp_path / "markers"
    markers.mkdir()
    evil = tmp_path / "evil.sh"
    # Each run leaves a marker named after the config that ran it, and never waits on its input.
    evil.write_text(f'#!/bin/sh\ntouch "{markers}/$1"\nexit 0\n')
    evil.chmod(0o755)
    config = {
        "core.fsmonitor": f"{evil} fsmonitor",
        "core.pager": f"{evil} pager",
        "pager.log": f"{evil} pager-log",
        "diff.external": f"{evil} external",
        "filter.x.clean": f"{evil} filter",
        "alias.st": f"!{evil} alias",
    }
    for key, value in config.items():
        subprocess.run(["git", "config", key, value], cwd=workspace, check=True)
    (workspace / ".git" / "info" / "attributes").write_text("* filter=x\n")
    (workspace / "calc.py").write_text((workspace / "calc.py").read_text() + "\n# changed\n")
    other = tmp_path / "elsewhere"
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    subprocess.run(["git", "config", "core.fsmonitor", f"{evil} elsewhere"], cwd=other, check=True)
    hostile_global = tmp_path / "global.gitconfig"
    hostile_global.write_text(f"[core]\n\tfsmonitor = {evil} global\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(hostile_global))
    return markers


def test_the_hostile_config_really_runs_programs(workspace: Path, hostile: Path) -> None:
    """Honesty check: without the gate's environment the same commands leave markers."""
    env = {**os.environ, "GIT_PAGER": "cat"}
    for command in ("git ls-files", "git status", "git diff", "git st", "git -C ../elsewhere ls-files"):
        subprocess.run(command, shell=True, cwd=workspace, env=env, capture_output=True, check=False)
    assert {p.name for p in hostile.iterdir()} >= {"fsmonitor", "filter", "external", "alias", "elsewhere"}


@pytest.mark.parametrize("command", READ_ONLY_GIT)
def test_read_only_git_runs_unasked_with_its_config_neutralised(
    workspace: Path, hostile: Path, command: str
) -> None:
    approver = ScriptedApprover()
    gate = make_gate(
        workspace,
        approver,
        policy=ApprovalPolicy.UNTRUSTED,
        profile=frozenset({Capability.READ}),
        sandbox=SandboxMode.NONE,
    )
    call = gate.run(shell(workspace, command, timeout_s=60.0))
    assert call.approval_source == "not-required" and approver.asked == []
    assert call.status == "succeeded", call.output_tail
    assert list(hostile.iterdir()) == [], f"{command} ran the repository's programs"
    finish(gate)


@pytest.mark.skipif(not probe().available, reason="needs a working bubblewrap")
@pytest.mark.parametrize("command", READ_SANDBOX_GIT)
def test_git_that_reaches_unneutralisable_config_runs_unasked_in_the_read_sandbox(
    workspace: Path, hostile: Path, command: str
) -> None:
    approver = ScriptedApprover()
    gate = make_gate(
        workspace,
        approver,
        policy=ApprovalPolicy.UNTRUSTED,
        profile=frozenset({Capability.READ}),
        sandbox=SandboxMode.NONE,
    )
    call = gate.run(shell(workspace, command, timeout_s=60.0))
    assert call.approval_source == "not-required" and approver.asked == []
    assert call.status == "succeeded" and call.sandbox.mode == "read-only", call.output_tail
    assert list(hostile.iterdir()) == [], f"{command} ran the repository's programs with effect"
    finish(gate)


@pytest.mark.parametrize("command", NOT_READ_ONLY_GIT)
def test_git_that_reaches_unneutralisable_config_is_asked(
    workspace: Path, hostile: Path, command: str
) -> None:
    approver = ScriptedApprover(Decision.DENY)
    gate = make_gate(
        workspace,
        approver,
        policy=ApprovalPolicy.UNTRUSTED,
        profile=frozenset({Capability.READ}),
        sandbox=SandboxMode.NONE,
    )
    call = gate.run(shell(workspace, command, timeout_s=60.0))
    assert len(approver.asked) == 1 and call.status == "denied"
    assert list(hostile.iterdir()) == []
    finish(gate)


def test_the_overrides_apply_only_to_calls_that_run_unasked_because_read_only() -> None:
    facts = call_facts(ToolKind.SHELL, "git log --oneline")
    assert facts.read_only_safe and facts.env == GIT_NEUTRAL_ENV
    step_env = {"FOO": "1", "GIT_CONFIG_COUNT": "0"}
    assert spawn_env(step_env, facts, "not-required") == {**step_env, **GIT_NEUTRAL_ENV}
    assert spawn_env(step_env, facts, "human") == step_env  # a human approved the command as it is
    assert call_facts(ToolKind.SHELL, "ls").env == {}
    # A named session's shell keeps the environment it started with: the overrides cannot reach it.
    in_session = call_facts(ToolKind.SHELL, "git log", persistent_shell=True)
    assert (in_session.read_only_safe, Capability.RUN in in_session.needs, in_session.env) == (
        False,
        True,
        {},
    )
    assert call_facts(ToolKind.SHELL, "ls", persistent_shell=True).read_only_safe


def test_git_neutral_env_is_what_git_reads() -> None:
    """git itself reports the overrides as the winning values, over a hostile repository config."""
    # `git -c` values passed down in GIT_CONFIG_PARAMETERS would outrank GIT_CONFIG_KEY_n: emptied.
    inherited = {**os.environ, "GIT_CONFIG_PARAMETERS": "'core.fsmonitor'='./evil'"}
    out = subprocess.run(
        ["git", "config", "--get", "core.fsmonitor"],
        env={**inherited, **GIT_NEUTRAL_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.stdout.strip() == "false"
    count = int(GIT_NEUTRAL_ENV["GIT_CONFIG_COUNT"])
    keys = {GIT_NEUTRAL_ENV[f"GIT_CONFIG_KEY_{i}"] for i in range(count)}
    assert {"core.fsmonitor", "core.pager", "core.hooksPath", "gpg.program", "protocol.allow"} <= keys
