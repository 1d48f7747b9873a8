"""Approval policy as data plus one pure decision: ``decide(policy, profile, call) -> Requirement``.

No I/O here. The gate (gate.py) acts on the requirement; the tests enumerate every combination.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codex_orchestrator.commands.findings import CommandPart


class ApprovalPolicy(StrEnum):
    """When a human is asked (the names follow codex's ``--ask-for-approval``)."""

    UNTRUSTED = "untrusted"  # only read-only-safe calls run unasked
    ON_FAILURE = (
        "on-failure"  # confinable calls run in the sandbox unasked; a sandbox denial asks to escalate
    )
    ON_REQUEST = "on-request"  # run within the profile; ask when a call needs more or asks for it
    NEVER = "never"  # never ask: anything beyond the profile is forbidden outright


class Capability(StrEnum):
    READ = "read"
    EDIT = "edit"
    RUN = "run"
    NETWORK = "network"


class ToolKind(StrEnum):
    SHELL = "shell"  # a shell command
    EDIT = "edit"  # a file edit done by the orchestrator itself
    FETCH = "fetch"  # a network fetch
    AGENT = "agent"  # an agent invocation such as `codex exec "..."`


class Outcome(StrEnum):
    SKIP = "skip"  # no approval needed: run it
    FORBID = "forbid"  # refuse without asking
    ASK = "ask"  # pause and ask a human


class ApprovalSource(StrEnum):
    """Who settled a tool call's approval; a closed vocabulary recorded on every call."""

    NOT_REQUIRED = "not-required"
    CACHE = "cache"
    HUMAN = "human"
    POLICY = "policy"
    HOOK = "hook"  # a pre_tool_call hook denied it (hooks.py)


@dataclass(frozen=True)
class CallFacts:
    """What the decision needs to know about one tool call."""

    kind: ToolKind
    needs: frozenset[Capability]
    read_only_safe: bool = False  # every part of the command is known not to write, run code or reach out
    requests_escalation: bool = False  # the step itself asks to be approved (e.g. `approval: required`)
    confined: bool = (
        False  # it will run in a working sandbox that blocks writes outside the workspace and network
    )
    # Environment overrides read_only_safe depends on (git's executable config neutralised); the gate applies
    # them when the call runs unasked because it is read-only.
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    # read_only_safe only in the read sandbox (read-only, no network, no sockets): the gate runs it there when
    # it runs unasked, and where it cannot, takes the call as needing `run` (gate.initial_requirement).
    read_sandbox: bool = False
    # Each command the call runs, as the classifier split it (commands.findings.CommandPart), for exec-policy
    # rules; ``opaque`` when something runs that is no such part (rules cannot then allow the whole call).
    parts: tuple[CommandPart, ...] = field(default=(), hash=False)
    opaque: bool = False


# What a sandbox enforces by itself: under on-failure a call may go beyond the profile in these, sandboxed.
SANDBOX_ENFORCED: frozenset[Capability] = frozenset({Capability.EDIT, Capability.NETWORK})


@dataclass(frozen=True)
class Requirement:
    """The decision. ``missing`` (needs - profile) is never granted by a SKIP: the gate withholds it."""

    outcome: Outcome
    reason: str
    missing: frozenset[Capability] = frozenset()


def parse_profile(names: Iterable[str]) -> frozenset[Capability]:
    """Capability names to a profile; raises ``ValueError`` naming the first unknown name."""
    out: set[Capability] = set()
    for name in names:
        try:
            out.add(Capability(name))
        except ValueError:
            allowed = ", ".join(c.value for c in Capability)
            raise ValueError(f"unknown capability {name!r} (allowed: {allowed})") from None
    return frozenset(out)


def _names(caps: Iterable[Capability]) -> str:
    return ", ".join(sorted(c.value for c in caps))


def decide(policy: ApprovalPolicy, profile: frozenset[Capability], call: CallFacts) -> Requirement:
    """Decide whether ``call`` runs, is forbidden, or needs a human, under ``policy`` and ``profile``."""
    missing = frozenset(call.needs - profile)
    if missing:
        if policy is ApprovalPolicy.NEVER:
            return Requirement(
                Outcome.FORBID, f"needs {_names(missing)} beyond the profile and policy is never", missing
            )
        if (
            policy is ApprovalPolicy.ON_FAILURE
            and call.confined
            and missing <= SANDBOX_ENFORCED
            and not call.requests_escalation
        ):
            return Requirement(
                Outcome.SKIP,
                f"policy on-failure: runs sandboxed without {_names(missing)}; a denial asks to escalate",
                missing,
            )
        return Requirement(Outcome.ASK, f"needs {_names(missing)}, which the profile does not grant", missing)
    if call.requests_escalation:
        if policy is ApprovalPolicy.NEVER:
            return Requirement(Outcome.FORBID, "the call asks for approval and policy is never")
        return Requirement(Outcome.ASK, "the call asks for approval")
    if policy is ApprovalPolicy.UNTRUSTED and not call.read_only_safe:
        return Requirement(Outcome.ASK, "policy untrusted: only read-only-safe calls run unasked")
    return Requirement(Outcome.SKIP, "within the profile")


def decide_escalation(policy: ApprovalPolicy) -> Requirement:
    """After a sandbox denial: may we ask to retry without the sandbox?"""
    if policy is ApprovalPolicy.NEVER:
        return Requirement(Outcome.FORBID, "the sandbox denied the call and policy is never")
    return Requirement(Outcome.ASK, "the command failed in the sandbox; retry without it?")
