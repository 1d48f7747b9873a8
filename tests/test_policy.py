"""``policy.decide`` checked exhaustively against an independently written table of the rules.

Every ApprovalPolicy, every profile (subset of Capability), every set of needs, both read_only_safe and both
requests_escalation values. The rules, in order:

1. The call needs a capability the profile lacks  → ASK, or FORBID under ``never``.
2. The call itself asks for approval               → ASK, or FORBID under ``never``.
   Except under ``on-failure``, when the call runs confined (a working sandbox) and everything missing is
   enforced by the sandbox (edit, network) and the call does not ask for approval → SKIP: it runs sandboxed
   without those capabilities and a sandbox denial asks to escalate.
3. Policy ``untrusted`` and the call is not read-only safe → ASK.
4. Otherwise                                       → SKIP (run without asking).

``missing`` is always exactly ``needs - profile`` and every requirement carries a reason.
"""

from __future__ import annotations

from itertools import chain, combinations, permutations

import pytest

from codex_orchestrator.policy import (
    ApprovalPolicy,
    CallFacts,
    Capability,
    Outcome,
    ToolKind,
    decide,
    decide_escalation,
    parse_profile,
)

UNTRUSTED, ON_FAILURE, ON_REQUEST, NEVER = (
    ApprovalPolicy.UNTRUSTED,
    ApprovalPolicy.ON_FAILURE,
    ApprovalPolicy.ON_REQUEST,
    ApprovalPolicy.NEVER,
)
SKIP, ASK, FORBID = Outcome.SKIP, Outcome.ASK, Outcome.FORBID

# (policy, needs beyond the profile, requests escalation, read-only safe) -> outcome, written out row by row.
EXPECTED: dict[tuple[ApprovalPolicy, bool, bool, bool], Outcome] = {
    (UNTRUSTED, False, False, False): ASK,
    (UNTRUSTED, False, False, True): SKIP,
    (UNTRUSTED, False, True, False): ASK,
    (UNTRUSTED, False, True, True): ASK,
    (UNTRUSTED, True, False, False): ASK,
    (UNTRUSTED, True, False, True): ASK,
    (UNTRUSTED, True, True, False): ASK,
    (UNTRUSTED, True, True, True): ASK,
    (ON_FAILURE, False, False, False): SKIP,
    (ON_FAILURE, False, False, True): SKIP,
    (ON_FAILURE, False, True, False): ASK,
    (ON_FAILURE, False, True, True): ASK,
    (ON_FAILURE, True, False, False): ASK,
    (ON_FAILURE, True, False, True): ASK,
    (ON_FAILURE, True, True, False): ASK,
    (ON_FAILURE, True, True, True): ASK,
    (ON_REQUEST, False, False, False): SKIP,
    (ON_REQUEST, False, False, True): SKIP,
    (ON_REQUEST, False, True, False): ASK,
    (ON_REQUEST, False, True, True): ASK,
    (ON_REQUEST, True, False, False): ASK,
    (ON_REQUEST, True, False, True): ASK,
    (ON_REQUEST, True, True, False): ASK,
    (ON_REQUEST, True, True, True): ASK,
    (NEVER, False, False, False): SKIP,
    (NEVER, False, False, True): SKIP,
    (NEVER, False, True, False): FORBID,
    (NEVER, False, True, True): FORBID,
    (NEVER, True, False, False): FORBID,
    (NEVER, True, False, True): FORBID,
    (NEVER, True, True, False): FORBID,
    (NEVER, True, True, True): FORBID,
}


def subsets(items: list[Capability]) -> list[frozenset[Capability]]:
    return [frozenset(c) for c in chain.from_iterable(combinations(items, n) for n in range(len(items) + 1))]


CAPABILITIES = list(Capability)
PROFILES = subsets(CAPABILITIES)


def label(caps: frozenset[Capability]) -> str:
    return "+".join(sorted(c.value for c in caps)) or "none"


def test_the_table_covers_every_policy_and_the_enums_are_what_the_table_assumes() -> None:
    assert len(PROFILES) == 2 ** len(CAPABILITIES) == 16
    assert {key[0] for key in EXPECTED} == set(ApprovalPolicy)
    assert len(EXPECTED) == len(ApprovalPolicy) * 2 * 2 * 2


@pytest.mark.parametrize("profile", PROFILES, ids=label)
@pytest.mark.parametrize("policy", list(ApprovalPolicy), ids=lambda p: p.value)
def test_decide_exhaustively(policy: ApprovalPolicy, profile: frozenset[Capability]) -> None:
    for needs in PROFILES:
        for read_only_safe in (True, False):
            for escalation in (True, False):
                for kind, confined in ((k, c) for k in ToolKind for c in (True, False)):
                    call = CallFacts(kind, needs, read_only_safe, escalation, confined)
                    got = decide(policy, profile, call)
                    case = f"{policy.value} profile={label(profile)} {call}"
                    beyond = not needs <= profile
                    expected = EXPECTED[(policy, beyond, escalation, read_only_safe)]
                    sandbox_enforced = needs - profile <= {Capability.EDIT, Capability.NETWORK}
                    if policy is ON_FAILURE and beyond and confined and sandbox_enforced and not escalation:
                        expected = SKIP
                    assert got.outcome is expected, case
                    assert got.missing == needs - profile, case
                    assert got.reason.strip(), case
                    for cap in got.missing:
                        assert cap.value in got.reason, f"{case}: the reason names what is missing"


def test_decide_is_pure() -> None:
    call = CallFacts(ToolKind.SHELL, frozenset({Capability.READ, Capability.EDIT}))
    profile = frozenset({Capability.READ})
    assert decide(ON_REQUEST, profile, call) == decide(ON_REQUEST, profile, call)
    assert profile == frozenset({Capability.READ})


@pytest.mark.parametrize(
    ("policy", "outcome"), [(UNTRUSTED, ASK), (ON_FAILURE, ASK), (ON_REQUEST, ASK), (NEVER, FORBID)]
)
def test_decide_escalation(policy: ApprovalPolicy, outcome: Outcome) -> None:
    got = decide_escalation(policy)
    assert got.outcome is outcome
    assert got.missing == frozenset()
    assert got.reason.strip()


def test_parse_profile_accepts_every_name_in_any_order_and_repeated() -> None:
    for profile in PROFILES:
        for order in permutations([c.value for c in profile]):
            assert parse_profile(order) == profile
            assert parse_profile([*order, *order]) == profile
    assert parse_profile([]) == frozenset()
    assert parse_profile(iter(["read", "run"])) == frozenset({Capability.READ, Capability.RUN})


@pytest.mark.parametrize("bad", ["write", "READ", " read", "", "exec", "net"])
def test_parse_profile_rejects_unknown_names(bad: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_profile(["read", bad, "also-bad"])
    message = str(excinfo.value)
    assert repr(bad) in message, "names the first bad value"
    assert "also-bad" not in message
    for cap in Capability:
        assert cap.value in message, "lists the allowed names"
