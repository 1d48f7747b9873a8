"""The one seam every exec backend implements: spawn a child in a PTY and drive it.

Local PTYs (``local.py``) and SSH PTYs (``ssh.py``) implement ``ExecBackend``/``ChildProcess``;
``session.py`` builds sessions, streaming and transcripts on top without knowing which backend it drives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# Environment pinned for every child so its output is stable and free of pagers and colour codes.
PINNED_ENV: Mapping[str, str] = {
    "TERM": "dumb",
    "NO_COLOR": "1",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
}

DEFAULT_ROWS = 24
DEFAULT_COLS = 80
# How long a terminated process group gets between SIGTERM and SIGKILL.
DEFAULT_KILL_GRACE_S = 2.0


@dataclass(frozen=True)
class SpawnRequest:
    """What to start. ``env`` entries override ``PINNED_ENV``, which overrides the inherited environment."""

    argv: tuple[str, ...]
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    rows: int = DEFAULT_ROWS
    cols: int = DEFAULT_COLS


@runtime_checkable
class ChildProcess(Protocol):
    """A running child attached to a PTY. Exit codes follow the shell: 128+N when killed by signal N."""

    @property
    def pid(self) -> int | None:
        """Local pid, or the remote pid when known, else None."""
        ...

    def read(self, timeout_s: float) -> bytes | None:
        """Next chunk of output; ``None`` when nothing arrived within ``timeout_s``; ``b""`` at end of output."""
        ...

    def write(self, data: bytes) -> None:
        """Send bytes to the child's terminal (its stdin)."""
        ...

    def resize(self, rows: int, cols: int) -> None: ...

    def signal(self, signum: int) -> None:
        """Deliver ``signum`` to the child's whole process group."""
        ...

    def poll(self) -> int | None:
        """Exit code if the child has exited, else None."""
        ...

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Block until exit (or timeout, then None)."""
        ...

    def terminate_tree(self, grace_s: float = DEFAULT_KILL_GRACE_S) -> int | None:
        """End the whole process tree: SIGTERM to the group, ``grace_s`` to exit, then SIGKILL."""
        ...

    def close(self) -> None:
        """Release file descriptors / channels. Idempotent."""
        ...


@runtime_checkable
class ExecBackend(Protocol):
    """Starts children. ``name`` is ``local`` or ``ssh://user@host:port``; it is recorded in manifests."""

    @property
    def name(self) -> str: ...

    def spawn(self, request: SpawnRequest) -> ChildProcess: ...
