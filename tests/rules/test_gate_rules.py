"""Rules in the gate, on real PTYs and bubblewrap: forbidden refuses under every policy, prompt asks (and is
refused under never), allow runs unasked inside the sandbox, and approve-and-remember writes a rule that
codex's own evaluator loads and that lets the next matching call run unasked."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from codex_orchestrator.approvals import Decision
from codex_orchestrator.gate import ToolOrchestrator
from codex_orchestrator.policy import ApprovalPolicy, Capability
from codex_orchestrator.rules.sources import RulesSettings
from tests.rules.codex_check import codex_binary
from tests.test_gate import ScriptedApprover, finish, make_gate, shell

R, E, X = Capability.READ, Capability.EDIT, Capability.RUN

RULES = """
prefix_rule(
    pattern = ["git", "push", "origin", ["main", "master"]],
    decision = "forbidden",
    justification = "never push to main",
    match = ["git push origin main"],
)
prefix_rule(pattern = ["cat", "secrets.txt"], decision = "prompt", justification = "ask before reading it")
prefix_rule(pattern = ["touch"], decision = "allow")
"""


def with_rules(gate: ToolOrchestrator, **settings: object) -> ToolOrchestrator:
    gate.config = replace(gate.config, rules=RulesSettings(include_user=False, **settings))  # type: ignore[arg-type]
    return gate


@pytest.fixture
def ruled(workspace: Path) -> Path:
    (workspace / ".codex" / "rules").mkdir(parents=True)
    (workspace / ".codex" / "rules" / "team.rules").write_text(RULES, encoding="utf-8")
    return workspace


@pytest.mark.parametrize("policy", list(ApprovalPolicy))
def test_forbidden_refuses_every_part_under_every_policy(ruled: Path, policy: ApprovalPolicy) -> None:
    approver = ScriptedApprover(Decision.APPROVE)  # never used: a forbidden rule asks nobody
    gate = with_rules(make_gate(ruled, approver, policy=policy, profile=frozenset({R, E, X})))
    call = gate.run(shell(ruled, "echo ok && sh -c 'git push origin main'"))
    assert call.status == "denied" and call.approval_source == "policy" and call.attempts == []
    assert approver.asked == []
    assert "never push to main" in (call.error or "")
    assert call.rule is not None
    assert (call.rule.file, call.rule.decision) == (".codex/rules/team.rules", "forbidden")
    assert call.rule.pattern == '["git", "push", "origin", ["main", "master"]]'
    assert call.rule.matched_prefix == ["git", "push", "origin", "main"]
    data = finish(gate)
    assert data["tool_calls"][0]["rule"]["justification"] == "never push to main"  # type: ignore[index]


def test_prompt_asks_where_the_profile_would_not_and_names_the_rule(ruled: Path) -> None:
    (ruled / "secrets.txt").write_text("s3cret\n")
    approver = ScriptedApprover(Decision.APPROVE)
    gate = with_rules(make_gate(ruled, approver, profile=frozenset({R})))
    call = gate.run(shell(ruled, "cat secrets.txt | wc -l"))
    assert call.status == "succeeded" and call.approval_source == "human"
    assert "ask before reading it" in approver.asked[0].reason
    data = finish(gate)
    approval = data["approvals"][0]  # type: ignore[index]
    assert approval["rule"]["decision"] == "prompt" and approval["rule"]["file"] == ".codex/rules/team.rules"


def test_prompt_is_refused_under_never(ruled: Path) -> None:
    approver = ScriptedApprover()
    gate = with_rules(make_gate(ruled, approver, policy=ApprovalPolicy.NEVER, profile=frozenset({R})))
    call = gate.run(shell(ruled, "cat secrets.txt"))
    assert call.status == "denied" and approver.asked == [] and "policy is never" in (call.error or "")
    finish(gate)


def test_allow_runs_unasked_where_the_classifier_asks_but_inside_the_sandbox(ruled: Path) -> None:
    approver = ScriptedApprover(Decision.DENY)  # only for the sandbox's escalation below
    # The profile grants only read: the rule lets the edit run unasked, inside the workspace-write sandbox.
    gate = with_rules(make_gate(ruled, approver, policy=ApprovalPolicy.UNTRUSTED, profile=frozenset({R})))
    call = gate.run(shell(ruled, "touch made.txt"))
    assert call.status == "succeeded" and call.approval_source == "not-required" and approver.asked == []
    assert call.sandbox.state == "sandboxed" and (ruled / "made.txt").exists()
    assert call.rule is not None and call.rule.decision == "allow"
    # Still the sandbox: the allowed command cannot write outside the workspace; leaving it is asked for.
    outside = ruled.parent / "outside.txt"
    call = gate.run(shell(ruled, f"touch {outside}", step="outside"))
    assert [a.purpose for a in approver.asked] == ["escalation"]
    assert call.status == "failed" and not outside.exists()
    finish(gate)


def test_allow_needs_every_part(ruled: Path) -> None:
    approver = ScriptedApprover(Decision.DENY)
    gate = with_rules(make_gate(ruled, approver, policy=ApprovalPolicy.UNTRUSTED, profile=frozenset({R, E})))
    call = gate.run(shell(ruled, "touch a.txt && rm a.txt"))
    assert call.status == "denied" and len(approver.asked) == 1 and call.rule is None
    finish(gate)


def test_approve_and_remember_writes_a_rule_codex_loads_and_the_next_call_runs_unasked(
    workspace: Path,
) -> None:
    approver = ScriptedApprover(Decision.APPROVE_AND_REMEMBER)
    gate = with_rules(
        make_gate(workspace, approver, policy=ApprovalPolicy.UNTRUSTED, profile=frozenset({R, E}))
    )
    first = gate.run(shell(workspace, "mkdir -p 'out dir' && touch 'out dir/ünï.txt'"))
    assert first.status == "succeeded" and first.approval_source == "human"
    assert approver.asked[0].amendment == (("mkdir", "-p", "out dir"), ("touch", "out dir/ünï.txt"))
    rules_file = workspace / ".codex" / "rules" / "default.rules"
    text = rules_file.read_text(encoding="utf-8")
    assert text == (
        'prefix_rule(pattern=["mkdir", "-p", "out dir"], decision="allow")\n'
        'prefix_rule(pattern=["touch", "out dir/ünï.txt"], decision="allow")\n'
    )
    second = gate.run(shell(workspace, "mkdir -p 'out dir' && touch 'out dir/ünï.txt'", step="again"))
    assert second.status == "succeeded" and second.approval_source == "not-required"
    assert len(approver.asked) == 1
    data = finish(gate)
    approval = data["approvals"][0]  # type: ignore[index]
    assert approval["remembered_to"] == ".codex/rules/default.rules"
    assert approval["remembered"] == text.splitlines()
    # codex's own evaluator loads the written file and allows the call.
    done = subprocess.run(
        [
            str(codex_binary()),
            "execpolicy",
            "check",
            "--rules",
            str(rules_file),
            "--",
            "touch",
            "out dir/ünï.txt",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"CODEX_HOME": str(workspace / ".codex-home"), "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(done.stdout)["decision"] == "allow"


def test_remember_to_codex_home(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = workspace.parent / "codex-home"
    monkeypatch.setenv("CODEX_HOME", str(home))
    approver = ScriptedApprover(Decision.APPROVE_AND_REMEMBER)
    gate = with_rules(
        make_gate(workspace, approver, policy=ApprovalPolicy.UNTRUSTED, profile=frozenset({R, E})),
        remember_to="codex-home",
    )
    gate.config = replace(gate.config, rules=replace_rules(gate, include_user=True))
    gate.run(shell(workspace, "touch x.txt"))
    assert (
        home / "rules" / "default.rules"
    ).read_text() == 'prefix_rule(pattern=["touch", "x.txt"], decision="allow")\n'
    again = gate.run(shell(workspace, "touch x.txt", step="again"))
    assert again.approval_source == "not-required"
    data = finish(gate)
    assert data["approvals"][0]["remembered_to"] == "$CODEX_HOME/rules/default.rules"  # type: ignore[index]


def replace_rules(gate: ToolOrchestrator, **changes: object) -> RulesSettings:
    assert gate.config.rules is not None
    return gate.config.rules.model_copy(update=changes)
