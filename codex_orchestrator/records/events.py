"""The append-only event log: ordered (``seq``) JSON lines, one event a line, O(1) to append, hash-chained.

The same event models are printed by ``exec --json`` and generate ``schemas/events.schema.json``. Every event
carries ``schema_version`` (``MAJOR.MINOR``): readers check the major, so a listener that attaches late or reads
only the last line (``tail -n 1``) can still tell whether it understands the stream. Every event also carries
``prev_hash``, the SHA-256 of the previous line's bytes (records/chain.py verifies the chain).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter

from codex_orchestrator.errors import RecordError
from codex_orchestrator.records.agent_events import AgentEvent

# Re-exported: readers (the SDK, the CLI) take the version and the base from here, as before.
from codex_orchestrator.records.event_base import EVENTS_SCHEMA_VERSION as EVENTS_SCHEMA_VERSION
from codex_orchestrator.records.event_base import _Event as _Event
from codex_orchestrator.redact import Redactor

# A tool call's output kept in the event log: the first and last half of this, the rest counted as omitted.
DEFAULT_OUTPUT_BUDGET_BYTES = 32 * 1024 * 1024


class RunStarted(_Event):
    type: Literal["run.started"] = "run.started"
    task_id: str
    manifest: str = Field(description="manifest path, relative to the workspace")
    mode: Literal["run", "exec"] = "run"
    gate_enabled: bool = Field(
        default=True, description="the gate feature flag of this run (metrics rollout)"
    )


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
    milestone: str | None = Field(default=None, description="the milestone the call belongs to")


class ApprovalRequested(_Event):
    type: Literal["approval.requested"] = "approval.requested"
    tool_call_id: str
    approval_id: str
    purpose: Literal["capability", "escalation", "instructions"]
    reason: str
    needs: list[str]
    flow_run_id: str | None = Field(
        default=None, description="the paused Prefect flow run that waits for the answer, if any"
    )


class ApprovalResolved(_Event):
    type: Literal["approval.resolved"] = "approval.resolved"
    tool_call_id: str
    approval_id: str | None = None
    outcome: Literal["approved", "denied", "forbidden", "not-required", "cancelled"]
    source: Literal["not-required", "cache", "human", "policy", "hook"]
    for_session: bool = False
    answered_by: str | None = Field(default=None, description="the channel the answer came through")
    reason: str | None = None
    reviewer: str | None = Field(default=None, description="the name the reviewer gave, if any")


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


class OutputOmitted(_Event):
    """The call's output went over the event log's budget: the head was logged, then this, then the tail."""

    type: Literal["output.omitted"] = "output.omitted"
    tool_call_id: str
    session_id: str
    omitted_bytes: int = Field(description="bytes of output between the logged head and tail")
    budget_bytes: int = Field(description="the per-call output budget of the event log")


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


class ToolCallSkipped(_Event):
    type: Literal["tool_call.skipped"] = "tool_call.skipped"
    tool_call_id: str
    step: str
    reason: str
    milestone: str | None = Field(default=None, description="the milestone the call belongs to")


class InstanceDown(_Event):
    type: Literal["instance.down"] = "instance.down"
    instance: str
    reason: str


class NotificationFailed(_Event):
    """A notification target could not be told (notify.py); the run goes on."""

    type: Literal["notification.failed"] = "notification.failed"
    target: str = Field(description="command:<argv0>, block:<slug/name> or prefect-event")
    event: str = Field(description="the notification it was for, e.g. run.failed")
    detail: str


class InstructionsDrift(_Event):
    """The run's instruction files differ from the previous run of the same task (drift.py)."""

    type: Literal["instructions.drift"] = "instructions.drift"
    previous_run_id: str
    added: list[str]
    removed: list[str]
    changed: list[str]
    policy: str = Field(description="on_instruction_drift: ignore, warn or ask")


class DiagnosticsRecorded(_Event):
    """Verification measured the workspace's change since the run began (``git diff --stat``'s summary)."""

    type: Literal["diagnostics.recorded"] = "diagnostics.recorded"
    files_changed: int
    insertions: int
    deletions: int


class GuardrailResult(_Event):
    """One guardrail's outcome (spec-guard included, which runs without a tool call)."""

    type: Literal["guardrail.result"] = "guardrail.result"
    name: str
    result: Literal["passed", "failed", "skipped", "error"]
    required: bool
    call_id: str | None = None


class ReviewRequested(_Event):
    """The review waits for an answer in a paused Prefect flow run (``approve RUN_ID`` answers it)."""

    type: Literal["review.requested"] = "review.requested"
    flow_run_id: str | None = None
    policy: str


class ReviewVerdict(_Event):
    type: Literal["review.verdict"] = "review.verdict"
    verdict: Literal["approved", "changes-requested", "skipped"]
    source: Literal["human", "reviewer", "policy"]
    by: str | None = None
    comments: str | None = None


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
    | OutputOmitted
    | AttemptFinished
    | RetryScheduled
    | SandboxDenied
    | GuardSwitched
    | ToolCallFinished
    | ToolCallSkipped
    | InstanceDown
    | NotificationFailed
    | InstructionsDrift
    | DiagnosticsRecorded
    | GuardrailResult
    | ReviewRequested
    | ReviewVerdict
    | Summary
    | AgentEvent,  # the agent's own (records/agent_events.py), one list of them
    Field(discriminator="type"),
]
# Built when first used (reading a log back, the schema), not by every process that only writes events.
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event, config=ConfigDict(defer_build=True))

Listener = Callable[[_Event, str], None]  # the event and its redacted JSON line


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def genesis_hash(run_id: str) -> str:
    """What the first event of a run's log carries as ``prev_hash``: ties the chain to its run."""
    return hashlib.sha256(f"codex-orchestrator:{run_id}".encode()).hexdigest()


def line_hash(line: bytes) -> str:
    """The hash the next event carries: SHA-256 of one line exactly as written, without its newline."""
    return hashlib.sha256(line).hexdigest()


class EventLog:
    """Appends events to ``events.jsonl`` with one ``write`` each (no rewrite, no per-event fsync).

    Several processes may append to one log (tool calls of one run on different workers): ``seq`` and
    ``prev_hash`` are taken under an exclusive ``flock`` from the log's last line, so the log is one gap-free,
    repeat-free hash chain whoever writes, and an append never reads more than the tail. ``O_APPEND`` writes of
    a whole line are not torn by a crash of the writer; ``sync()`` and the owner's ``close()`` force them to disk.
    Listeners (the ``--json`` printer, the SDK) see each event this process writes, after it is written.
    """

    def __init__(
        self,
        path: Path,
        run_id: str,
        redact: Redactor | None = None,
        *,
        output_budget_bytes: int = DEFAULT_OUTPUT_BUDGET_BYTES,
    ) -> None:
        self.path = path
        self.run_id = run_id
        self._redact = redact or Redactor()
        # Per tool call, how much output the log keeps (head and tail); attempts.OutputRecorder applies it.
        self.output_budget_bytes = output_budget_bytes
        self._lock = threading.Lock()
        self._seq = 0
        self._hash = genesis_hash(run_id)  # the hash of the last line (ours or another writer's)
        self._size = -1  # the log's size after our last append; another size means another writer appended
        self._listeners: list[Listener] = []
        self._before_close: list[Callable[[], None]] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise RecordError(f"cannot open event log: {exc.strerror}", path=str(path)) from exc

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def last_hash(self) -> str:
        """The chain head as this process last saw it: the hash of the line with ``last_seq``."""
        return self._hash

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def before_close(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` when the log is closed, while it can still be written (a notifier's flush)."""
        self._before_close.append(hook)

    def emit(self, event: _Event) -> _Event:
        with self._lock:
            event.ts = utc_now_iso()
            event.run_id = self.run_id
            if self._fd is None:
                self._seq += 1
                event.seq = self._seq
                event, line = self._serialise(event)
            else:
                event, line = self._append(self._fd, event)
            for listener in self._listeners:
                listener(event, line)
        return event

    def _append(self, fd: int, event: _Event) -> tuple[_Event, str]:
        """Allocate the next ``seq`` and link to the last line under the log's flock (whoever wrote it)."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                torn = False
                if size != self._size:
                    self._seq, self._hash = last_link_in(fd, size, self.run_id)
                    torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
                event.seq = self._seq + 1
                event.prev_hash = self._hash
                event, line = self._serialise(event)
                data = line.encode("utf-8")
                # After a writer killed mid-line, start on a line of our own (readers pass the torn one over).
                os.write(fd, b"\n" + data if torn else data)
                self._seq, self._size = event.seq, size + len(data) + (1 if torn else 0)
                self._hash = line_hash(data[:-1])
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError as exc:
            raise RecordError(f"cannot append event: {exc.strerror}", path=str(self.path)) from exc
        return event, line

    def _serialise(self, event: _Event) -> tuple[_Event, str]:
        """Redact the event's values (never its JSON text, where a secret may be escaped), then dump it.

        Listeners get the redacted event too: the human output of ``exec`` prints its fields. The chain link
        is not redacted: it is a hash, and a secret that happens to be hex must not break it."""
        if not self._redact.active:
            return event, event.model_dump_json() + "\n"
        data = event.model_dump(mode="json")
        clean = self._redact.tree(data)
        clean["prev_hash"] = data["prev_hash"]
        if clean != data:
            event = type(event).model_validate(clean)
        return event, json.dumps(clean, separators=(",", ":"), ensure_ascii=False) + "\n"

    def sync(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def close(self, *, sync: bool = True) -> None:
        """Run the before-close hooks and close the log; ``sync`` forces what any process appended to disk.

        A tool call's own handle on the run's log closes without it: its finished record is the call's sync
        point (call_recorder.py), and the run's owner syncs the log, every writer's lines included (an fsync
        covers the file, not one descriptor), when the run closes."""
        hooks, self._before_close = self._before_close, []
        for hook in hooks:
            hook()
        with self._lock:
            if self._fd is not None:
                if sync:
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None


_SEQ_RE = re.compile(rb'^\{"seq":\s*(\d+)')
_TAIL_BLOCK = 65536
_FIRST_TAIL_BLOCK = 4096


def last_link_in(fd: int, size: int, run_id: str) -> tuple[int, str]:
    """The ``seq`` of the last whole event line of the log open at ``fd`` and that line's hash (for an empty
    log: 0 and the run's genesis hash).

    Reads backwards a block at a time; a torn last line (a writer killed mid-line) is passed over."""
    end = size
    buf = b""
    block = _FIRST_TAIL_BLOCK  # most last lines are short: read little first, then more and more
    while end > 0:
        start = max(0, end - block)
        buf = os.pread(fd, end - start, start) + buf
        end = start
        block = min(block * 4, _TAIL_BLOCK)
        lines = buf.split(b"\n")
        if end > 0:
            lines = lines[1:]  # the first piece may be the end of a line that started before this block
        for line in reversed(lines):
            match = _SEQ_RE.match(line)
            if match is not None and line.endswith(b"}") and _whole(line):
                return int(match.group(1)), line_hash(line)
    return 0, genesis_hash(run_id)


def _whole(line: bytes) -> bool:
    # A torn line may happen to end in "}" (inside a string): only a line that parses is a link of the chain.
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def last_seq_in(fd: int, size: int) -> int:
    """The ``seq`` of the last whole event line of the log open at ``fd`` (0 for an empty log)."""
    return last_link_in(fd, size, "")[0]


def read_events(path: Path) -> list[dict[str, Any]]:
    """Parse an event log (tests and the SDK); a line torn by a killed writer is passed over."""

    events: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events
