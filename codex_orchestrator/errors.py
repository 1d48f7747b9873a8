"""Error hierarchy of the orchestrator core; every error carries the facts a user needs to act.

OrchestratorError
├── RequestError            bad user input (request file, option, task id); CLI exit 2
├── ApprovalDenied          a human, the policy or a timeout refused a tool call
├── ToolCallError           a tool call ran (or tried to) and did not succeed
│   ├── ToolCallFailed      non-zero exit after all retries
│   └── ToolCallTimedOut    the attempt outlived its timeout; its process tree was killed
├── ExecError               exec layer (see ``codex_orchestrator.exec.errors``)
├── SandboxError            the sandbox cannot be used as asked
│   └── SandboxUnavailable  bubblewrap missing or user namespaces disabled
├── FetchError              a fetch step could not get its URL (network, HTTP, size, time)
│   └── FetchRefused        the URL is outside the fence: scheme, or an address that is not public
└── RecordError             a manifest/event/metrics file could not be written or read
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base of every error raised by codex-orchestrator."""


class RequestError(OrchestratorError):
    """Invalid user input. ``field`` names what is wrong; ``allowed`` says what would be accepted."""

    def __init__(self, message: str, *, field: str | None = None, allowed: str | None = None) -> None:
        self.field = field
        self.allowed = allowed
        parts = [f"{field}: {message}" if field else message]
        if allowed:
            parts.append(f"(allowed: {allowed})")
        super().__init__(" ".join(parts))


class ApprovalDenied(OrchestratorError):
    """A tool call was refused. ``source`` is ``human``, ``policy`` or ``timeout``."""

    def __init__(self, message: str, *, source: str, reason: str | None = None) -> None:
        self.source = source
        self.reason = reason
        super().__init__(message if not reason else f"{message}: {reason}")


class ToolCallError(OrchestratorError):
    """A tool call did not succeed; carries the last attempt's facts."""

    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None = None,
        attempts: int = 0,
        output_tail: str = "",
    ) -> None:
        self.exit_code = exit_code
        self.attempts = attempts
        self.output_tail = output_tail
        super().__init__(message)


class ToolCallFailed(ToolCallError):
    """The command exited non-zero (after every allowed retry)."""


class ToolCallTimedOut(ToolCallError):
    """The command exceeded its timeout; its whole process tree was ended."""


class SandboxError(OrchestratorError):
    """The sandbox cannot run this command as asked."""


class SandboxUnavailable(SandboxError):
    """bubblewrap is missing or cannot create namespaces on this machine; ``detail`` says which."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"sandbox unavailable: {detail}")


class FetchError(OrchestratorError):
    """A fetch did not complete; ``url`` is the URL it was at (after any redirects)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"fetch {url}: {reason}")


class FetchRefused(FetchError):
    """The URL (or a redirect's target) is not allowed: only http(s) to public addresses or allowed hosts."""


class RecordError(OrchestratorError):
    """A run record could not be written or read; ``path`` names the file."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)
