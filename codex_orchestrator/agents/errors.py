"""Errors of an agent step driven through its protocol; each names the cause in one line and carries the facts.

AgentError (an OrchestratorError)
├── AgentUnavailable     the agent's binary is missing, or cannot start
├── AgentIncompatible    the binary's protocol lacks what the driver needs (another version than the pinned one)
├── AgentCrashed         the agent process ended (or closed its stream) in the middle of a turn
├── AgentModelError      the model endpoint failed: HTTP error, malformed stream, dropped connection
├── AgentTurnFailed      the turn ended failed for another reason the agent reported
└── AgentInterrupted     the turn was interrupted: Ctrl-C, SIGTERM or the step's timeout
"""

from __future__ import annotations

from collections.abc import Mapping

from codex_orchestrator.errors import OrchestratorError


class AgentError(OrchestratorError):
    """An agent step failed. ``stderr_tail`` is the end of the agent process's stderr (for the record)."""

    def __init__(self, message: str, *, stderr_tail: str = "") -> None:
        self.stderr_tail = stderr_tail
        super().__init__(message)


class AgentUnavailable(AgentError):
    """The agent binary is missing or does not start."""


class AgentIncompatible(AgentError):
    """The binary speaks a protocol without what the driver needs."""


class AgentCrashed(AgentError):
    """The agent process ended, or its stream broke, before the turn completed."""


class AgentModelError(AgentError):
    """The model endpoint failed (HTTP status, malformed stream, dropped connection)."""


class AgentTurnFailed(AgentError):
    """The turn ended failed for a reason the agent reported."""


class AgentInterrupted(AgentError):
    """The turn was interrupted (``why``: interrupt, terminate, timeout)."""

    def __init__(self, message: str, *, why: str, stderr_tail: str = "") -> None:
        self.why = why
        super().__init__(message, stderr_tail=stderr_tail)


# codex's CodexErrorInfo values that mean the model endpoint failed, as we name them.
_MODEL_FAILURES = {
    "internalServerError": "HTTP 500",
    "serverOverloaded": "overloaded",
    "rateLimitExceeded": "rate limited",
    "usageLimitExceeded": "usage limit reached",
    "unauthorized": "unauthorized (check the key in secret_env)",
    "badRequest": "bad request",
    "httpConnectionFailed": "HTTP connection failed",
    "responseStreamConnectionFailed": "could not open the response stream",
    "responseStreamDisconnected": "the response stream broke off",
    "responseTooManyFailedAttempts": "too many failed attempts",
}


def model_failure(info: object, message: str) -> str | None:
    """Why the model endpoint failed, from codex's ``codexErrorInfo`` (None: not the endpoint's fault)."""
    if isinstance(info, str):
        if info in _MODEL_FAILURES:
            return _MODEL_FAILURES[info]
        if info == "other" and "stream" in message.lower():
            return "malformed or dropped response stream"
        return None
    if isinstance(info, Mapping):
        for key, detail in info.items():
            if key in _MODEL_FAILURES:
                status = detail.get("httpStatusCode") if isinstance(detail, Mapping) else None
                return _MODEL_FAILURES[key] + (f" (HTTP {status})" if status else "")
    return None
