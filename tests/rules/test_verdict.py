"""The rules' verdict combined with ``policy.decide``, exhaustively over policies (pure; no processes)."""

from __future__ import annotations

import pytest

from codex_orchestrator.commands import call_facts
from codex_orchestrator.policy import ApprovalPolicy, Capability, Outcome, ToolKind
from codex_orchestrator.rules.loader import RulesSource, load_sources
from codex_orchestrator.rules.verdict import decide_with_rules, evaluate

POLICY = load_sources(
    [
        RulesSource(
            "t.rules",
            'prefix_rule(["pytest"], "allow")\n'
            'prefix_rule(["make", "test"], "allow")\n'
            'prefix_rule(["npm", "install"], "prompt", justification="installs code")\n'
            'prefix_rule(["git", "push"], "forbidden", justification="no pushes")\n',
        )
    ]
)
R, E = Capability.READ, Capability.EDIT


def outcome(command: str, policy: ApprovalPolicy, *, escalation: bool = False) -> tuple[Outcome, str]:
    facts = call_facts(ToolKind.SHELL, command, requests_escalation=escalation)
    verdict = evaluate(POLICY, facts.parts, facts.opaque, "/")
    req = decide_with_rules(policy, frozenset({R}), facts, verdict)
    return req.outcome, req.reason


@pytest.mark.parametrize("policy", list(ApprovalPolicy))
def test_forbidden_wins_everywhere_and_is_justified(policy: ApprovalPolicy) -> None:
    for command in ("git push", "pytest && git push origin", "env A=1 git push", "bash -c 'ls | git push'"):
        got, reason = outcome(command, policy)
        assert got is Outcome.FORBID and "no pushes" in reason, command


@pytest.mark.parametrize("policy", list(ApprovalPolicy))
def test_prompt_asks_or_is_refused_under_never(policy: ApprovalPolicy) -> None:
    got, reason = outcome("npm install left-pad && pytest", policy)
    assert got is (Outcome.FORBID if policy is ApprovalPolicy.NEVER else Outcome.ASK)
    assert "installs code" in reason


@pytest.mark.parametrize("policy", list(ApprovalPolicy))
def test_allow_covers_wrappers_but_needs_every_command(policy: ApprovalPolicy) -> None:
    assert outcome("pytest -q", policy)[0] is Outcome.SKIP
    assert outcome("env CI=1 sh -c 'pytest -x && make test'", policy)[0] is Outcome.SKIP
    # One command without a rule: the classifier decides (it asks for pytest's `run`, never skips).
    assert outcome("pytest && rm -rf build", policy)[0] is not Outcome.SKIP


def test_allow_does_not_vouch_for_what_it_cannot_see() -> None:
    untrusted = ApprovalPolicy.UNTRUSTED
    assert outcome("$TOOL pytest", untrusted)[0] is Outcome.ASK  # a command name from an expansion
    assert outcome("for f in a; do pytest; done", untrusted)[0] is Outcome.ASK  # a control structure
    assert outcome("make $TARGET", untrusted)[0] is Outcome.ASK  # the matched word is an expansion
    assert outcome("pytest", untrusted, escalation=True)[0] is Outcome.ASK  # the step asks to be approved


def test_the_deciding_rule_is_recorded() -> None:
    facts = call_facts(ToolKind.SHELL, "pytest && git push origin main")
    verdict = evaluate(POLICY, facts.parts, facts.opaque, "/")
    assert verdict.match is not None and verdict.match.matched_prefix == ("git", "push")
    assert verdict.describe() == 'rule t.rules ["git", "push"] forbidden: no pushes'
