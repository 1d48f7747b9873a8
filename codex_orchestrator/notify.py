"""Notifications: which run events notify whom, as data, and their delivery off the run's path.

Events (a closed vocabulary): ``approval.requested``, ``approval.resolved``, ``run.succeeded``, ``run.failed``,
``run.interrupted``, ``guard.switched``. Targets: a command (argv, the JSON payload on stdin, like codex's
``notify``), a Prefect notification block by name, or a Prefect event (``emit_event``) for automations.

A ``Notifier`` listens to a run's event log (records/events.py) and maps its events onto notifications; a
worker thread delivers them, so a slow or dead target never holds up the run, and the log waits for them
(bounded by each target's timeout) before it closes. A failing target is recorded — a ``notification.failed``
event and ``notification_failures`` in the manifest — and never fails the run. Block and Prefect-event targets
need Prefect in this process: ``tasks/notify.py`` installs that delivery when it is imported; without it (an
``exec`` that never pauses) only command targets are delivered and the others are recorded as not delivered.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import queue
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from codex_orchestrator.clock import utc_now
from codex_orchestrator.errors import OrchestratorError, RecordError, RequestError
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import EventLog
from codex_orchestrator.records.manifest import NotificationFailureRecord, RunState
from codex_orchestrator.records.store import RunStore

DEFAULT_TARGET_TIMEOUT_S = 10.0
# Closing a run's log waits at most this long for queued notifications: an interrupted run still ends in seconds.
FLUSH_LIMIT_S = 5.0
# `exec` has no request file: a command target comes from this variable, a JSON argv list.
NOTIFY_ENV_VAR = "CODEX_ORCHESTRATOR_NOTIFY"
PREFECT_EVENT_PREFIX = "codex-orchestrator."


class NotificationEvent(StrEnum):
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_RESOLVED = "approval.resolved"
    RUN_SUCCEEDED = "run.succeeded"
    RUN_FAILED = "run.failed"
    RUN_INTERRUPTED = "run.interrupted"
    GUARD_SWITCHED = "guard.switched"


class NotificationTarget(BaseModel):
    """One target: exactly one of ``command``, ``block`` and ``prefect_event``; ``events`` filters (default all)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built when first used

    command: list[str] | None = Field(default=None, description="argv; the JSON payload arrives on stdin")
    block: str | None = Field(
        default=None, description="a saved Prefect notification block, `<type-slug>/<name>`"
    )
    prefect_event: bool = Field(
        default=False, description="emit a Prefect event `codex-orchestrator.<event>`"
    )
    events: list[NotificationEvent] = Field(
        default=list(NotificationEvent), description="which events this target gets"
    )
    timeout_s: float = Field(default=DEFAULT_TARGET_TIMEOUT_S, gt=0, le=300)

    @model_validator(mode="after")
    def _exactly_one(self) -> NotificationTarget:
        kinds = [self.command is not None, self.block is not None, self.prefect_event]
        if sum(kinds) != 1:
            raise ValueError("a notification target needs exactly one of 'command', 'block', 'prefect_event'")
        if self.command is not None and not self.command:
            raise ValueError("a command target needs a non-empty argv")
        if self.block is not None and "/" not in self.block:
            raise ValueError(f"block {self.block!r}: name it as <type-slug>/<name>, e.g. custom-webhook/ops")
        return self

    @property
    def label(self) -> str:
        if self.command is not None:
            return f"command:{self.command[0]}"
        return f"block:{self.block}" if self.block is not None else "prefect-event"


# Built when first used (targets configured), like NotificationTarget itself.
_TARGETS: TypeAdapter[list[NotificationTarget]] = TypeAdapter(
    list[NotificationTarget], config=ConfigDict(defer_build=True)
)


@dataclass(frozen=True)
class Notification:
    """What a target is told: the payload (JSON on a command's stdin, a Prefect event's payload) and a text."""

    event: NotificationEvent
    run_id: str
    task_id: str
    details: Mapping[str, Any]
    ts: str

    def payload(self) -> dict[str, Any]:
        return {"type": self.event.value, "run_id": self.run_id, "task_id": self.task_id, "ts": self.ts,
                **self.details}  # fmt: skip

    def subject(self) -> str:
        return f"codex-orchestrator: {self.event.value} ({self.task_id}/{self.run_id})"

    def body(self) -> str:
        facts = ", ".join(f"{k}={v}" for k, v in self.details.items() if v not in (None, "", []))
        return f"{self.event.value} in run {self.run_id} of task {self.task_id}" + (
            f": {facts}" if facts else ""
        )

    def resource_id(self) -> str:
        """The Prefect event resource: one per approval (an automation pairs requested/resolved on it)."""
        approval = self.details.get("approval_id")
        if approval and self.event in (
            NotificationEvent.APPROVAL_REQUESTED,
            NotificationEvent.APPROVAL_RESOLVED,
        ):
            return f"{PREFECT_EVENT_PREFIX}approval.{self.run_id}.{approval}"
        return f"{PREFECT_EVENT_PREFIX}run.{self.run_id}"


class NotificationFailed(OrchestratorError):
    """A target could not be told; carries the target and why."""

    def __init__(self, target: str, detail: str) -> None:
        self.target = target
        self.detail = detail
        super().__init__(f"notification to {target} failed: {detail}")


class PrefectDelivery(Protocol):
    """Delivers to block and Prefect-event targets (tasks/notify.py); raises ``NotificationFailed``."""

    def __call__(self, target: NotificationTarget, notification: Notification) -> None: ...


_PREFECT_DELIVERY: PrefectDelivery | None = None


def install_prefect_delivery(delivery: PrefectDelivery | None) -> None:
    """Called by tasks/notify.py on import: this process has Prefect, so block/event targets can be served."""
    global _PREFECT_DELIVERY
    _PREFECT_DELIVERY = delivery


def parse_targets(data: Any, *, field: str = "notifications") -> list[NotificationTarget]:
    try:
        return _TARGETS.validate_python(data or [])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RequestError(
            str(first["msg"]).removeprefix("Value error, "), field=f"{field}.{where}"
        ) from None


def targets_from_env(environ: Mapping[str, str] | None = None) -> list[NotificationTarget]:
    """``CODEX_ORCHESTRATOR_NOTIFY='["cmd", "arg"]'``: one command target (what ``exec`` uses)."""
    raw = (os.environ if environ is None else environ).get(NOTIFY_ENV_VAR, "").strip()
    if not raw:
        return []
    try:
        argv = json.loads(raw)
    except ValueError:
        argv = None
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise RequestError("must be a JSON list of strings (an argv)", field=NOTIFY_ENV_VAR)
    return [NotificationTarget(command=argv)]


def notification_for(event: Mapping[str, Any]) -> NotificationEvent | None:
    """Which notification a logged event is, if any (pure): questions asked and answered, the run's end, a
    streaming-guard switch. An approval settled without asking (not required, the session cache) is none."""
    kind = event.get("type")
    if kind == "approval.requested":
        return NotificationEvent.APPROVAL_REQUESTED
    if kind == "approval.resolved":
        return NotificationEvent.APPROVAL_RESOLVED if event.get("approval_id") else None
    if kind == "guard.switched":
        return NotificationEvent.GUARD_SWITCHED
    if kind == "run.finished":
        status = event.get("status")
        if status == "succeeded":
            return NotificationEvent.RUN_SUCCEEDED
        if status in ("interrupted", "cancelled"):
            return NotificationEvent.RUN_INTERRUPTED
        return NotificationEvent.RUN_FAILED
    return None


_BASE_FIELDS = frozenset({"type", "seq", "ts", "run_id", "schema_version"})
FailureSink = Callable[[str, str, NotificationEvent], None]  # target label, detail, event


class Notifier:
    """Turns a run's logged events into notifications for ``targets`` and delivers them on a worker thread."""

    def __init__(
        self, targets: list[NotificationTarget], *, run_id: str, task_id: str, on_failure: FailureSink
    ):
        self.targets = targets
        self.run_id = run_id
        self.task_id = task_id
        self.on_failure = on_failure
        self._queue: queue.Queue[tuple[contextvars.Context, NotificationTarget, Notification] | None] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def on_event(self, event: Any, _line: str) -> None:
        """An event-log listener (called under the log's lock: only queues)."""
        data = event.model_dump(mode="json") if hasattr(event, "model_dump") else dict(event)
        kind = notification_for(data)
        if kind is None:
            return
        note = Notification(
            event=kind,
            run_id=self.run_id,
            task_id=self.task_id,
            details={k: v for k, v in data.items() if k not in _BASE_FIELDS},
            ts=str(data.get("ts") or utc_now()),
        )
        for target in self.targets:
            if kind in target.events:
                # Prefect's settings (its API URL) live in context variables: deliver in this context.
                self._queue.put((contextvars.copy_context(), target, note))
                self._ensure_worker()

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="codex-notify", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                context, target, note = item
                try:
                    context.run(deliver, target, note)
                except NotificationFailed as exc:
                    self.on_failure(exc.target, exc.detail, note.event)
            finally:
                self._queue.task_done()

    def flush(self, limit_s: float = FLUSH_LIMIT_S) -> None:
        """Wait until everything queued was delivered or recorded as failed, for at most ``limit_s`` (a target
        still busy then goes on in its daemon thread; what it records after the log closed is in run.json)."""
        with self._lock:
            thread = self._thread
            self._thread = None
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout=limit_s)


def deliver(target: NotificationTarget, notification: Notification) -> None:
    """Deliver one notification to one target; ``NotificationFailed`` says why it could not be."""
    if target.command is not None:
        _run_command(target, notification)
        return
    if _PREFECT_DELIVERY is None:
        raise NotificationFailed(
            target.label, "Prefect is not loaded in this process (an exec without a pause): not delivered"
        )
    _PREFECT_DELIVERY(target, notification)


def _run_command(target: NotificationTarget, notification: Notification) -> None:
    assert target.command is not None
    data = json.dumps(notification.payload(), ensure_ascii=False).encode("utf-8")
    try:
        done = subprocess.run(
            target.command, input=data, capture_output=True, timeout=target.timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise NotificationFailed(target.label, f"no exit within {target.timeout_s} s (killed)") from None
    except OSError as exc:
        raise NotificationFailed(target.label, f"cannot run it: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", errors="replace").strip()[-300:]
        raise NotificationFailed(target.label, f"exit code {done.returncode}" + (f": {tail}" if tail else ""))


# -- wiring into a run's records ------------------------------------------------------------------------------
MAX_RECORDED_FAILURES = 50  # a dead target is recorded, not allowed to grow the manifest without bound


def targets_of(request: Mapping[str, Any]) -> list[NotificationTarget]:
    """The targets a run's stored request names (a run's ``RunRequest`` or an exec run's ``CallInput``)."""
    try:
        return parse_targets(request.get("notifications"))
    except RequestError:
        return []  # validated when the run was asked for; an older record without the section has none


def attach_notifier(
    events: EventLog, store: RunStore, targets: list[NotificationTarget] | None = None
) -> None:
    """Notify ``targets`` (default: those of the run's stored request) of what ``events`` logs."""
    if targets is None:
        try:
            targets = targets_of(store.read_request())
        except RecordError:
            targets = []
    if not targets:
        return

    def failed(target: str, detail: str, event: NotificationEvent) -> None:
        events.emit(ev.NotificationFailed(target=target, event=event.value, detail=detail))

        def change(state: RunState) -> None:
            if len(state.notification_failures) < MAX_RECORDED_FAILURES:
                state.notification_failures.append(
                    NotificationFailureRecord(target=target, event=event.value, detail=detail, at=utc_now())
                )

        with contextlib.suppress(RecordError):  # the event above already says so
            store.update_run(change, durable=False)

    notifier = Notifier(targets, run_id=store.ref.run_id, task_id=store.ref.task_id, on_failure=failed)
    events.add_listener(notifier.on_event)
    events.before_close(notifier.flush)
