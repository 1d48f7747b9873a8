"""The append-only event log: ordered (``seq``) JSON lines, one event a line, O(1) to append.

The same event models are printed by ``exec --json`` and generate ``schemas/events.schema.json``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from codex_orchestrator.errors import RecordError


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int = Field(default=0, description="position in the run's log, from 1, no gaps")
    ts: str = Field(default="", description="UTC time the event was recorded (ISO 8601)")
    run_id: str = ""


class RunStarted(_Event):
    type: Literal["run.started"] = "run.started"
    task_id: str
    manifest: str = Field(description="manifest path, relative to the workspace")
    mode: Literal["run", "exec"] = "run"


class RunFinished(_Event):
    type: Literal["run.finished"] = "run.finished"
    status: str
    exit_code: int


class MilestoneStarted(_Event):
    type: Literal["milestone.started"] = "milestone.started"
    milestone: str
    flow_run_id: str | None = None


class MilestoneFinished(_Event):
    type: Literal["milestone.finished"] = "milestone.finished"
    milestone: str
    status: str


class ToolCallStarted(_Event):
    type: Literal["tool_call.started"] = "tool_call.started"
    tool_call_id: str
    step: str
    kind: str
    command: str
    cwd: str
    backend: str


class ApprovalRequested(_Event):
    type: Literal["approval.requested"] = "approval.requested"
    tool_call_id: str
    approval_id: str
    purpose: Literal["capability", "escalation"]
    reason: str
    needs: list[str]


class ApprovalResolved(_Event):
    type: Literal["approval.resolved"] = "approval.resolved"
    tool_call_id: str
    approval_id: str | None = None
    outcome: Literal["approved", "denied", "forbidden", "not-required"]
    source: Literal["not-required", "cache", "human", "policy"]
    for_session: bool = False
    answered_by: str | None = None
    reason: str | None = None


class AttemptStarted(_Event):
    type: Literal["attempt.started"] = "attempt.started"
    tool_call_id: str
    attempt: int
    sandboxed: bool


class Output(_Event):
    type: Literal["output"] = "output"
    tool_call_id: str
    session_id: str
    stream: str
    chunk_seq: int = Field(description="the session's own output sequence number")
    data: str


class AttemptFinished(_Event):
    type: Literal["attempt.finished"] = "attempt.finished"
    tool_call_id: str
    attempt: int
    exit_code: int | None
    duration_ms: float
    error: str | None = None
    session_id: str | None = Field(default=None, description="the exec session the attempt ran in, if any")


class RetryScheduled(_Event):
    type: Literal["retry.scheduled"] = "retry.scheduled"
    tool_call_id: str
    attempt: int = Field(description="the attempt that failed")
    delay_s: float
    reason: str


class SandboxDenied(_Event):
    type: Literal["sandbox.denied"] = "sandbox.denied"
    tool_call_id: str
    denial: str
    evidence: str


class GuardSwitched(_Event):
    type: Literal["guard.switched"] = "guard.switched"
    tool_call_id: str | None = None
    session_id: str
    p50_ms: float
    p95_ms: float
    p99_ms: float
    samples: int
    threshold_ms: float


class ToolCallFinished(_Event):
    type: Literal["tool_call.finished"] = "tool_call.finished"
    tool_call_id: str
    status: str
    exit_code: int | None
    attempts: int
    approval_source: str
    sandbox_state: str
    duration_ms: float


class Summary(_Event):
    type: Literal["summary"] = "summary"
    status: str
    exit_code: int | None = Field(description="the command's own exit code when it ran")
    attempts: int
    approval_source: str
    sandbox_state: str
    manifest: str
    duration_ms: float
    error: str | None = Field(default=None, description="why the call did not succeed, when it did not")


Event = Annotated[
    RunStarted
    | RunFinished
    | MilestoneStarted
    | MilestoneFinished
    | ToolCallStarted
    | ApprovalRequested
    | ApprovalResolved
    | AttemptStarted
    | Output
    | AttemptFinished
    | RetryScheduled
    | SandboxDenied
    | GuardSwitched
    | ToolCallFinished
    | Summary,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

Listener = Callable[[_Event, str], None]  # the event and its redacted JSON line


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventLog:
    """Appends events to ``events.jsonl`` with one ``write`` each (no rewrite, no per-event fsync).

    ``O_APPEND`` writes of a whole line are not torn by a crash of this process; ``sync()`` forces them to disk
    at checkpoints. Listeners (the ``--json`` printer, the SDK) see each event after it is written.
    """

    def __init__(self, path: Path, run_id: str, redact: Callable[[str], str] = lambda s: s) -> None:
        self.path = path
        self.run_id = run_id
        self._redact = redact
        self._lock = threading.Lock()
        self._seq = 0
        self._listeners: list[Listener] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise RecordError(f"cannot open event log: {exc.strerror}", path=str(path)) from exc

    @property
    def last_seq(self) -> int:
        return self._seq

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, event: _Event) -> _Event:
        with self._lock:
            self._seq += 1
            event.seq = self._seq
            event.ts = utc_now_iso()
            event.run_id = self.run_id
            line = self._redact(event.model_dump_json()) + "\n"
            if self._fd is not None:
                try:
                    os.write(self._fd, line.encode("utf-8"))
                except OSError as exc:
                    raise RecordError(f"cannot append event: {exc.strerror}", path=str(self.path)) from exc
            for listener in self._listeners:
                listener(event, line)
        return event

    def sync(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None


def read_events(path: Path) -> list[dict[str, Any]]:
    """Parse an event log (tests and the SDK); a torn last line from a killed writer is ignored."""
    import json

    events: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break
            events.append(json.loads(line))
    return events
