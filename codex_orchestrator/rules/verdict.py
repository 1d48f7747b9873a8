"""Rules decide with the policy: every command a call runs (each part the classifier sees, wrappers and what
they wrap) is matched, and the strictest rule combines with ``policy.decide``. Pure.

- ``forbidden`` on any part: refused without asking, under every policy; the justification is the reason.
- ``prompt`` on any part: asked even where the profile would let it run; under ``never``, refused.
- ``allow`` on every part (a wrapper needs no rule of its own, and nothing may run that is no part): runs
  without asking even where the classifier would ask, still inside the run's sandbox (its mode: workspace-write
  keeps edits in the workspace, read-only forbids them) and without network unless the profile grants it.
- otherwise (no rule, or only some parts allowed): ``policy.decide`` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from codex_orchestrator.commands.findings import CommandPart
from codex_orchestrator.policy import (
    ApprovalPolicy,
    CallFacts,
    Capability,
    Outcome,
    Requirement,
    decide,
)
from codex_orchestrator.rules.model import Evaluation, Policy, RuleDecision, RuleMatch, strictest


@dataclass(frozen=True)
class RuleVerdict:
    """What the rules say about a call: the deciding match (None: rules say nothing) and every evaluation."""

    decision: RuleDecision | None
    match: RuleMatch | None
    evaluations: tuple[Evaluation, ...] = ()

    def describe(self) -> str:
        """``rule .codex/rules/x.rules ["git", "push"] forbidden: never push to main``."""
        if self.match is None or self.decision is None:
            return "no rule"
        rule = self.match.rule
        text = f"rule {rule.source} {rule.pattern_text()} {self.decision.value}"
        return f"{text}: {rule.justification}" if rule.justification else text


NO_VERDICT = RuleVerdict(None, None)


def _allowed(part: CommandPart, evaluation: Evaluation) -> bool:
    """An allow that counts: the deciding match is ``allow`` and every word it matched is literal (an
    expansion's text is not what runs)."""
    if evaluation.decision is not RuleDecision.ALLOW:
        return False
    match = evaluation.deciding
    return match is not None and all(part.literal[: len(match.matched_prefix)])


def evaluate(policy: Policy, parts: Sequence[CommandPart], opaque: bool, cwd: str) -> RuleVerdict:
    """Match every part; the strictest decision wins, and ``allow`` only when it covers the whole call."""
    if not policy.rules_by_program or not parts:
        return NO_VERDICT
    evaluations = [policy.check(p.argv, resolve_host_executables=True, cwd=cwd) for p in parts]
    worst = strictest(d for e in evaluations if (d := e.decision) is not None)
    if worst in (RuleDecision.FORBIDDEN, RuleDecision.PROMPT):
        match = next(e.deciding for e in evaluations if e.decision is worst)
        return RuleVerdict(worst, match, tuple(evaluations))
    covered = not opaque and all(
        _allowed(p, e) or (p.wrapper and e.decision is None) for p, e in zip(parts, evaluations, strict=True)
    )
    if worst is RuleDecision.ALLOW and covered:
        match = next(e.deciding for e in evaluations if e.decision is RuleDecision.ALLOW)
        return RuleVerdict(RuleDecision.ALLOW, match, tuple(evaluations))
    return RuleVerdict(None, None, tuple(evaluations))


def decide_with_rules(
    policy: ApprovalPolicy, profile: frozenset[Capability], call: CallFacts, verdict: RuleVerdict
) -> Requirement:
    """``policy.decide`` with the rules' verdict on top (see the module's docstring)."""
    missing = frozenset(call.needs - profile)
    match verdict.decision:
        case RuleDecision.FORBIDDEN:
            return Requirement(Outcome.FORBID, verdict.describe(), missing)
        case RuleDecision.PROMPT:
            if policy is ApprovalPolicy.NEVER:
                return Requirement(
                    Outcome.FORBID, f"{verdict.describe()} (asks) and policy is never", missing
                )
            return Requirement(Outcome.ASK, f"{verdict.describe()} asks", missing)
        case RuleDecision.ALLOW if not call.requests_escalation:
            # Runs unasked in the run's sandbox (its mode confines edits to the workspace, or forbids them under
            # read-only); the network stays withheld unless the profile grants it.
            withheld = missing & {Capability.NETWORK}
            return Requirement(Outcome.SKIP, f"{verdict.describe()}: runs in the run's sandbox", withheld)
        case _:
            return decide(policy, profile, call)
