"""Approvals: what is asked, what is answered, who may answer (``Approver``) and the session approval cache."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

from codex_orchestrator.policy import Capability

# ``answered_by`` values that mean no person answered.
NOBODY = frozenset({"none", "timeout"})
# The channels an answer can come through. The Prefect UI is the one that cannot name itself: an answer that
# arrives without a channel came from its form. The others are our own code (tasks.approval.answer_approval).
UI_CHANNEL = "prefect-ui"
ANSWER_CHANNELS = ("cli", "terminal", "sdk", "auto-reviewer")


class Decision(StrEnum):
    APPROVE = "approve"
    APPROVE_FOR_SESSION = "approve-for-session"
    # Approve, and append an allow rule for the call to the rules file (rules/amend.py): later matching calls
    # run unasked, in this run and the next. A codex agent's call maps to acceptWithExecpolicyAmendment.
    APPROVE_AND_REMEMBER = "approve-and-remember"
    DENY = "deny"


@dataclass(frozen=True)
class ApprovalRequest:
    """One question to a human about one tool call."""

    approval_id: str
    run_id: str
    task_id: str
    tool_call_id: str
    step: str
    tool: str
    command: str  # already redacted
    cwd: str  # workspace-relative
    needs: tuple[str, ...]
    reason: str
    purpose: str = "capability"  # "escalation" after a sandbox denial; "instructions" for drift
    sandbox: str = "none"
    timeout_s: int = 3600
    # The prefixes approve-and-remember would allow (one per command the call runs; for a codex agent's call,
    # codex's proposedExecpolicyAmendment). Empty: the call cannot be remembered as a rule.
    amendment: tuple[tuple[str, ...], ...] = ()

    def markdown(self) -> str:
        """The text shown above the approval form (Prefect UI) and in the terminal."""
        title = {
            "escalation": "Retry without the sandbox?",
            "instructions": "The instruction files changed since the last run: start the exec milestone?",
        }.get(self.purpose, "Approve this tool call?")
        needs = ", ".join(f"`{n}`" for n in self.needs) or "—"
        remember = (
            "; **approve-and-remember** (also allow "
            + ", ".join("`" + " ".join(p).replace("`", "'") + "`" for p in self.amendment)
            + " from now on, through a rules file)"
            if self.amendment
            else ""
        )
        command = self.command.replace("```", "'''")
        return (
            f"## {title}\n\n"
            f"**Task** `{self.task_id}` · **run** `{self.run_id}` · **step** `{self.step}` ({self.tool})\n\n"
            f"```sh\n{command}\n```\n\n"
            f"| asked about | |\n|---|---|\n"
            f"| working directory | `{self.cwd}` |\n"
            f"| capabilities needed | {needs} |\n"
            f"| sandbox | `{self.sandbox}` |\n"
            f"| why you are asked | {self.reason} |\n\n"
            f"Choose **approve**, **approve-for-session** (same tool, command, directory and capabilities run "
            f"unasked for the rest of this run){remember} or **deny**, with an optional reason. "
            f"Unanswered after {self.timeout_s} s counts as a denial.\n"
        )


def pause_notice(request: ApprovalRequest, ui_url: str | None = None) -> str:
    """What a person is told when a call waits for them: what, why, and exactly how to answer."""
    lines = [
        f"waiting for approval {request.approval_id} of run {request.run_id}, step {request.step!r}:",
        f"  command: {request.command}",
        f"  why: {request.reason}",
        f"  answer:  codex-orchestrator approve {request.run_id} --approval {request.approval_id} "
        "[--deny] [--for-session] [--remember] [--reason TEXT]",
    ]
    if ui_url:
        lines.append(f"  or in the Prefect UI: {ui_url}")
    return "\n".join(lines)


def flow_run_url(api_url: str | None, flow_run_id: str | None, ui_url: str | None = None) -> str | None:
    """The Prefect UI page of a flow run: ``ui_url`` if known, else the API URL without ``/api``."""
    if not flow_run_id:
        return None
    base = (ui_url or (api_url.removesuffix("/").removesuffix("/api") if api_url else "")).rstrip("/")
    return f"{base}/runs/flow-run/{flow_run_id}" if base else None


@dataclass(frozen=True)
class ApprovalAnswer:
    decision: Decision
    reason: str | None = None
    answered_by: str = "unknown"  # the channel: prefect-ui, cli, terminal, sdk, auto-reviewer, timeout, none
    timed_out: bool = False
    reviewer: str | None = None  # the name the person gave, if any; never the channel

    @property
    def approved(self) -> bool:
        return self.decision is not Decision.DENY

    @property
    def source(self) -> Literal["human", "policy"]:
        """``human`` when a person answered; ``policy`` for a timeout or when nobody could be asked."""
        return "policy" if self.timed_out or self.answered_by in NOBODY else "human"


Announce = Callable[[str | None], None]


class Approver(Protocol):
    """Somebody who can answer. ``ask`` blocks until answered; a timeout is returned as a denial.

    Before it blocks, ``ask`` calls ``announce(flow_run_id)`` (the paused Prefect flow run, or None) so the
    question is recorded and every listener (terminal prompt, CLI, reviewer) can see where to answer.
    """

    def ask(self, request: ApprovalRequest, announce: Announce) -> ApprovalAnswer: ...


class NoApprover:
    """Used when nobody can answer (no TTY, no Prefect pause): every question is denied, saying why."""

    def __init__(self, why: str) -> None:
        self.why = why

    def ask(self, request: ApprovalRequest, announce: Announce) -> ApprovalAnswer:
        return ApprovalAnswer(Decision.DENY, reason=self.why, answered_by="none")


@dataclass(frozen=True)
class CacheKey:
    tool: str
    command: str
    cwd: str
    capabilities: frozenset[str]

    def digest(self) -> str:
        """A stable text form: the key of the run's persisted approve-for-session grants."""
        return json.dumps([self.tool, self.command, self.cwd, sorted(self.capabilities)])


def cache_key(tool: str, command: str, cwd: str, capabilities: Iterable[Capability | str]) -> CacheKey:
    return CacheKey(
        tool, command, cwd, frozenset(c.value if isinstance(c, Capability) else c for c in capabilities)
    )
