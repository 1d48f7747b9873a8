"""The closed vocabulary of span and metric attributes: their keys and the only values each may take.

Values come from enums (the policy's, the sandbox's and the ones here), never from free text: a value not in
the vocabulary maps to ``other``. docs/telemetry.md lists them.
"""

from __future__ import annotations

from enum import StrEnum

from codex_orchestrator.approvals import Decision
from codex_orchestrator.policy import ApprovalSource, ToolKind
from codex_orchestrator.sandbox import DenialKind, SandboxState

RUN_ID = "codex.run_id"
TASK_ID = "codex.task_id"
MODE = "codex.mode"
MILESTONE = "codex.milestone"
TOOL_CALL_ID = "codex.tool_call.id"
STEP = "codex.step"
TOOL = "codex.tool"
OUTCOME = "codex.outcome"
APPROVAL_SOURCE = "codex.approval.source"
APPROVAL_PURPOSE = "codex.approval.purpose"
APPROVAL_DECISION = "codex.approval.decision"
ANSWERED_BY = "codex.approval.answered_by"
SANDBOX_STATE = "codex.sandbox.state"
SANDBOX_DENIAL = "codex.sandbox.denial"
CACHE_RESULT = "codex.approval_cache.result"
QUANTILE = "codex.quantile"
AGENT = "codex.agent"  # which agent drives an agent step
AGENT_THREAD_ID = "codex.agent.thread_id"
AGENT_TURN_ID = "codex.agent.turn_id"
AGENT_TURN_STATUS = "codex.agent.turn.status"
TOKEN_TYPE = "codex.agent.token_type"
OTHER = "other"


class SpanName(StrEnum):
    RUN = "run"
    MILESTONE = "milestone"
    TOOL_CALL = "tool_call"
    APPROVAL = "approval"
    ATTEMPT = "attempt"
    AGENT_TURN = "agent_turn"  # a turn of an agent step's agent; its tool calls are its children


class AgentName(StrEnum):
    CODEX = "codex"


class TurnStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class TokenType(StrEnum):
    """The token counts an agent's model reports (agent.tokens)."""

    INPUT = "input"
    CACHED_INPUT = "cached_input"
    OUTPUT = "output"
    REASONING_OUTPUT = "reasoning_output"


class RunMode(StrEnum):
    RUN = "run"  # a request file's run (the autonomy flow)
    EXEC = "exec"  # one command (`codex-orchestrator exec`)
    WORKFLOW = "workflow"  # gated_run() in a user's flow


class CallOutcome(StrEnum):
    """How a tool call ended, as traced and counted."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DENIED = "denied"
    TIMED_OUT = "timed_out"
    ESCALATED = "escalated"  # succeeded, after an approved rerun without the sandbox
    SKIPPED = "skipped"


class ApprovalPurpose(StrEnum):
    CAPABILITY = "capability"
    ESCALATION = "escalation"


class AnsweredBy(StrEnum):
    PREFECT_UI = "prefect-ui"
    CLI = "cli"
    TERMINAL = "terminal"
    SDK = "sdk"
    AUTO_REVIEWER = "auto-reviewer"
    TIMEOUT = "timeout"
    NONE = "none"


_STATUS_OUTCOME = {
    "succeeded": CallOutcome.SUCCEEDED,
    "failed": CallOutcome.FAILED,
    "denied": CallOutcome.DENIED,
    "timed-out": CallOutcome.TIMED_OUT,
    "skipped": CallOutcome.SKIPPED,
}


def _closed(value: str | None, allowed: type[StrEnum]) -> str:
    try:
        return allowed(value or "").value
    except ValueError:
        return OTHER


def outcome_of(status: str, sandbox_state: str) -> str:
    outcome = _STATUS_OUTCOME.get(status)
    if outcome is None:
        return OTHER
    if outcome is CallOutcome.SUCCEEDED and sandbox_state == SandboxState.ESCALATED.value:
        return CallOutcome.ESCALATED.value
    return outcome.value


def tool_of(kind: str) -> str:
    return _closed(kind, ToolKind)


def approval_source_of(source: str | None) -> str | None:
    return None if source is None else _closed(source, ApprovalSource)


def denial_of(denial: str | None) -> str | None:
    return None if denial is None else _closed(denial, DenialKind)


def sandbox_state_of(state: str) -> str:
    return _closed(state, SandboxState)


def decision_of(decision: str) -> str:
    return _closed(decision, Decision)


def answered_by_of(channel: str | None) -> str:
    return _closed(channel or "none", AnsweredBy)


def purpose_of(purpose: str) -> str:
    return _closed(purpose, ApprovalPurpose)


def agent_of(name: str) -> str:
    return _closed(name, AgentName)


def turn_status_of(status: str) -> str:
    return _closed(status, TurnStatus)
