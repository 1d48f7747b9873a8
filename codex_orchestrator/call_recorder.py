"""The records of one tool call as the gate writes them: its call file, its approvals, its events and spans.

A ``CallRecorder`` lives for one call in whichever process runs it; it keeps nothing another process needs,
since everything it learns goes straight to the run's record files (records/store.py) and the manifest is
refolded (paced, by a timer thread) when the call starts and ends, and at once when it asks. Every text passes
through the ``Redactor`` of this process, which knows the secret values read here.

What survives a crash at each point of a call (records/atomic.py has the mechanics):

- ``begin_call``: the call file is written (renamed into place, not synced). A killed process leaves it whole,
  status ``pending``/``running``; after a machine crash it may be missing (a resume runs the call as new) or,
  on some filesystems, empty. The ``tool_call.started`` event is in the log, unsynced.
- progress (``touch``, paced): the same, never synced.
- ``finish_call``: the one sync point of a call. The finished record is renamed into place after an
  ``fdatasync`` and the directory is synced (group-committed with concurrent finishes), so once it returns the
  finished call survives a machine crash as well as a killed process. The event log is not synced per call:
  its owner syncs it when the run closes, and a machine crash may cut its tail (the chain stays valid as a
  prefix; the manifest and metrics are rebuilt from the record files, not from the log).
- the manifest: a projection, folded paced and rebuilt from the records by ``manifest --rebuild``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from codex_orchestrator.approvals import ApprovalRequest
from codex_orchestrator.clock import utc_now
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import EventLog
from codex_orchestrator.records.manifest import ApprovalRecord, ToolCallRecord
from codex_orchestrator.records.paths import RunPaths, relative_to_workspace
from codex_orchestrator.records.store import ManifestFolder, RunStore, shared_folder
from codex_orchestrator.redact import Redactor
from codex_orchestrator.telemetry import RunTracer

# Told of each pending question: its record, and the request itself (what a reviewer is shown).
ApprovalListener = Callable[[ApprovalRecord, ApprovalRequest], None]
# Progress rewrites of a running call's file are paced: at most one per interval (state changes are immediate).
PROGRESS_WRITE_INTERVAL_S = 0.5


def host_label() -> str:
    """Which process ran a call: ``hostname:pid`` (recorded per call; workers on several machines differ)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_gone(label: str | None) -> bool:
    """Whether the process ``host_label`` named is provably dead: on this host, and its pid is not alive.
    (A process on another host cannot be checked from here: it is presumed alive.)"""
    if not label:
        return False
    host, _, pid = label.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class CallRecorder:
    """Records one tool call of a run. Not shared between threads: one call, one recorder."""

    def __init__(
        self,
        store: RunStore,
        *,
        events: EventLog,
        tracer: RunTracer,
        redact: Redactor,
        folder: ManifestFolder | None = None,
        instance: str = "local",
    ) -> None:
        self.store = store
        store.redact = redact
        self.events = events
        self.tracer = tracer
        self.redact = redact
        self.folder = folder or shared_folder(store)
        self.workspace = Path(store.ref.workspace).resolve()
        self.approval_listeners: list[ApprovalListener] = []
        self.instance = instance
        self._last_progress = 0.0
        self._written_status: str | None = None  # the status in the call file as this recorder last wrote it

    @property
    def paths(self) -> RunPaths:
        return self.store.paths

    @property
    def run_id(self) -> str:
        return self.store.ref.run_id

    @property
    def task_id(self) -> str:
        return self.store.ref.task_id

    def rel(self, path: Path) -> str:
        return relative_to_workspace(path, self.workspace)

    # -- the call -----------------------------------------------------------------------------------------
    def announce(self, call: ToolCallRecord) -> None:
        """Emit ``tool_call.started`` and write the call's first record; its order is that event's seq."""
        started = self.events.emit(
            ev.ToolCallStarted(
                tool_call_id=call.id,
                step=call.step,
                kind=call.kind,
                command=call.command,
                cwd=call.cwd,
                backend=call.backend,
                milestone=call.milestone,
            )
        )
        self.begin_call(call, started.seq)

    def begin_call(self, call: ToolCallRecord, order: int) -> None:
        """The call exists from now on: its file is written (whole after kill -9) and the manifest shows it at
        the next fold (at once for a run's first call, else within the folder's pacing interval)."""
        call.order = call.order or order
        call.host = host_label()
        call.instance = self.instance
        self._write(call)
        self.refresh()

    def touch(self, call: ToolCallRecord) -> None:
        """Progress of a running call (an attempt started, a retry scheduled): a changed status is written at
        once (readers see the call running), other progress paced."""
        if call.status == self._written_status and (
            time.monotonic() - self._last_progress < PROGRESS_WRITE_INTERVAL_S
        ):
            return
        self._write(call)

    def finish_call(self, call: ToolCallRecord) -> None:
        """The call's final record, durable once this returns (the module docstring says what that covers)."""
        self._write(call, durable=True)
        self.refresh()

    def _write(self, call: ToolCallRecord, *, durable: bool = False) -> None:
        call.updated_at = utc_now()
        self.store.write_call(call, durable=durable)
        self._written_status = call.status
        self._last_progress = time.monotonic()

    def refresh(self, *, paced: bool = True) -> None:
        """Refold the manifest so readers see this call's state (paced: a long run is not slowed by it)."""
        self.folder.write(durable=False, paced=paced)

    # -- approvals ----------------------------------------------------------------------------------------
    def new_approval_id(self, call: ToolCallRecord) -> str:
        """Deterministic per call: the n-th question of this call's k-th run (``.r2`` on after a resume)."""
        rerun = f".r{len(call.lineage) + 1}" if call.lineage else ""
        return f"{call.id}{rerun}.ap{len(call.approval_ids) + 1}"

    def cache_check(self, call: ToolCallRecord, key: str) -> bool:
        hit = self.store.cache_has(key)
        call.approval_cache = "hit" if hit else "miss"
        return hit

    def cache_remember(self, key: str) -> None:
        self.store.cache_add(key)

    def approval_pending(
        self, call: ToolCallRecord, record: ApprovalRecord, request: ApprovalRequest
    ) -> None:
        """A question waits (under Prefect its flow run is about to pause): record it and tell the listeners."""
        record.asked_by = host_label()
        self._write(call)
        self.store.write_approval(record)
        self.refresh(paced=False)  # a person is about to be asked: the manifest shows it now
        for listener in list(self.approval_listeners):
            listener(record, request)

    def approval_resolved(self, record: ApprovalRecord) -> None:
        record.resolved_at = utc_now()
        self.store.write_approval(record)
        self.refresh()
