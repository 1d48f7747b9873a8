"""The Python SDK: drive ``codex-orchestrator`` from code, blocking (``Client``) or async (``AsyncClient``).

Both start the real CLI (``exec --json``, ``run --json``, ``approve``) and read its JSON Lines, so code and the
command line share one path::

    from codex_orchestrator.sdk import Client

    with Client().exec(["make", "test"], cwd="repo", task="tests") as handle:
        for event in handle.events():
            print(event["type"])
        print(handle.wait().status)

Files: ``_shared.py`` argv building, event checking, summaries, manifests, ``SdkError`` and the option types
(no process I/O); ``_sync.py`` ``Client`` and its handles (threads); ``_async.py`` ``AsyncClient`` and its
handles (asyncio tasks); ``_types.py`` ``typed_event``, an event dict as its model (agent events included).
"""

from __future__ import annotations

from codex_orchestrator.sdk._async import (
    STREAM_LINE_LIMIT_BYTES,
    AsyncClient,
    AsyncExecHandle,
    AsyncRunHandle,
)
from codex_orchestrator.sdk._shared import (
    APPROVE_TIMEOUT_S,
    DEFAULT_EXECUTABLE,
    KILL_GRACE_S,
    STDERR_TAIL_BYTES,
    STREAM_DRAIN_S,
    Approver,
    Event,
    ExecOptions,
    ExecSummary,
    RunSummary,
    SdkError,
)
from codex_orchestrator.sdk._sync import Client, ExecHandle, RunHandle
from codex_orchestrator.sdk._types import typed_event

__all__ = [
    "APPROVE_TIMEOUT_S",
    "DEFAULT_EXECUTABLE",
    "KILL_GRACE_S",
    "STDERR_TAIL_BYTES",
    "STREAM_DRAIN_S",
    "STREAM_LINE_LIMIT_BYTES",
    "Approver",
    "AsyncClient",
    "AsyncExecHandle",
    "AsyncRunHandle",
    "Client",
    "Event",
    "ExecHandle",
    "ExecOptions",
    "ExecSummary",
    "RunHandle",
    "RunSummary",
    "SdkError",
    "typed_event",
]
