"""Errors of the exec layer (PTY sessions, local and SSH backends).

Each class names its ``failure`` (recorded on the tool call; ``exec`` maps it to an exit code): the command
could not be started (``not-started``), or the SSH connection failed before it (``ssh-connect``,
``ssh-host-key``) or under it (``ssh-connection-lost``).

ExecError                 (an OrchestratorError)
├── SpawnError            the command could not be started (``argv``, ``cause``)
├── SessionNotFound       no live session with that id (``session_id``)
├── SessionLimitReached   every slot holds a running session (``limit``)
├── ConnectionLost        an SSH connection dropped mid-call (``host``); retryable
├── SshConnectError       could not connect or authenticate (``host``); retryable when transient
└── HostKeyError          unknown or changed host key (``host``, ``fingerprint``); never retried
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from codex_orchestrator.errors import OrchestratorError

Failure = Literal["not-started", "ssh-connect", "ssh-host-key", "ssh-connection-lost"]
SSH_FAILURES: frozenset[Failure] = frozenset({"ssh-connect", "ssh-host-key", "ssh-connection-lost"})


class ExecError(OrchestratorError):
    """Base of exec-layer errors. ``retryable`` tells the gate's retry loop whether another attempt may help."""

    retryable: bool = False
    failure: ClassVar[Failure] = "not-started"


class SpawnError(ExecError):
    def __init__(self, argv: Sequence[str], cause: str) -> None:
        self.argv = list(argv)
        self.cause = cause
        super().__init__(f"cannot start {self.argv[:1]}: {cause}")


class SessionNotFound(ExecError):
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"no exec session {session_id!r} (it exited and was pruned, or never existed)")


class SessionLimitReached(ExecError):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"all {limit} exec session slots hold running sessions; close one first")


class ConnectionLost(ExecError):
    retryable = True
    failure: ClassVar[Failure] = "ssh-connection-lost"

    def __init__(self, host: str, detail: str) -> None:
        self.host = host
        self.detail = detail
        super().__init__(f"SSH connection to {host} lost: {detail}")


class SshConnectError(ExecError):
    failure: ClassVar[Failure] = "ssh-connect"

    def __init__(self, host: str, detail: str, *, retryable: bool = True) -> None:
        self.host = host
        self.detail = detail
        self.retryable = retryable
        super().__init__(f"cannot connect to {host}: {detail}")


class HostKeyError(ExecError):
    failure: ClassVar[Failure] = "ssh-host-key"

    def __init__(self, host: str, fingerprint: str, *, changed: bool, known_hosts: str | None) -> None:
        self.host = host
        self.fingerprint = fingerprint
        self.changed = changed
        self.known_hosts = known_hosts
        what = "CHANGED" if changed else "unknown"
        hint = (
            f"verify the fingerprint out of band, then add the host key to {known_hosts or 'your known_hosts file'} "
            f"(ssh-keyscan -p PORT HOST >> known_hosts) or pass --trust-on-first-use to record it"
        )
        if changed:
            hint = (
                "someone may be intercepting the connection; "
                "if the key change is expected, remove the old entry and re-add it"
            )
        super().__init__(f"refusing {host}: host key {what} ({fingerprint}); {hint}")
