"""The live record of one run: manifest, event log, traces, approval cache and heartbeat, kept consistent.

Everything the gate and the milestones learn goes through a ``RunRecorder``; it decides what is written when
(run state changes at once, tool-call progress paced) and never lets a secret through its ``Redactor``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codex_orchestrator.approvals import ApprovalRequest, SessionApprovalCache
from codex_orchestrator.errors import RecordError
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import EventLog
from codex_orchestrator.records.manifest import (
    ApprovalRecord,
    Manifest,
    ManifestWriter,
    MilestoneRecord,
    RunStatus,
    ToolCallRecord,
)
from codex_orchestrator.records.metrics import compute_run_metrics, update_task_metrics
from codex_orchestrator.records.paths import RunPaths, ensure_new_run, ensure_runs_dir, relative_to_workspace
from codex_orchestrator.redact import REDACTED, Redactor
from codex_orchestrator.telemetry import RunTracer

MILESTONES = ("foundation", "exec", "telemetry", "verification")
HEARTBEAT_INTERVAL_S = 5.0
# Exit codes of `run`/`exec` (documented in docs/cli.md): the command's own code is used by `exec` when it ran.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# Told of each pending question: its record, and the request itself (what a reviewer is shown).
ApprovalListener = Callable[[ApprovalRecord, ApprovalRequest], None]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RunRecorder:
    """Creates the run directory and owns its records until ``finish``."""

    def __init__(
        self,
        *,
        paths: RunPaths,
        workspace: Path,
        request: dict[str, Any],
        mode: str = "run",
        goal: str = "",
        gate_enabled: bool = True,
        secrets: list[str] | None = None,
        with_milestones: bool = True,
        trace: bool = True,
    ) -> None:
        self.paths = paths
        self.workspace = workspace.resolve()
        self.redact = Redactor(secrets or [])
        ensure_new_run(paths)
        try:
            ensure_runs_dir(paths.runs_dir)
            paths.run_dir.mkdir(parents=True)
        except OSError as exc:
            raise RecordError(
                f"cannot create run directory: {exc.strerror}", path=str(paths.run_dir)
            ) from exc
        now = utc_now()
        manifest = Manifest(
            run_id=paths.run_id,
            task_id=paths.task_id,
            mode=mode,
            status="queued",
            goal=goal,
            run_dir=relative_to_workspace(paths.run_dir, self.workspace),
            created_at=now,
            updated_at=now,
            heartbeat_at=now,
            request=_redact_request(request, secrets or []),
            gate_enabled=gate_enabled,
            milestones=[MilestoneRecord(name=m) for m in MILESTONES] if with_milestones else [],
        )
        self.writer = ManifestWriter(paths.manifest, manifest, self.redact)
        self.events = EventLog(paths.events, paths.run_id, self.redact)
        self.tracer = RunTracer(
            paths.traces if trace else None, run_id=paths.run_id, task_id=paths.task_id, redact=self.redact
        )
        self.cache = SessionApprovalCache()
        self._ids = itertools.count(1)
        self._approval_ids = itertools.count(1)
        self._lock = threading.RLock()
        self._approval_listeners: list[ApprovalListener] = []
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._finished = False
        self.writer.save(force=True)

    # -- properties ---------------------------------------------------------------------------------------
    @property
    def manifest(self) -> Manifest:
        return self.writer.manifest

    @property
    def run_id(self) -> str:
        return self.paths.run_id

    @property
    def manifest_rel(self) -> str:
        return relative_to_workspace(self.paths.manifest, self.workspace)

    def rel(self, path: Path) -> str:
        return relative_to_workspace(path, self.workspace)

    # -- run state -----------------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            self._set_status("running")
        self.events.emit(
            ev.RunStarted(task_id=self.paths.task_id, manifest=self.manifest_rel, mode=self.manifest.mode)
        )
        self._heartbeat = threading.Thread(target=self._beat, name=f"heartbeat-{self.run_id}", daemon=True)
        self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_INTERVAL_S):
            with self._lock:
                self.manifest.heartbeat_at = utc_now()
                self.writer.save(force=True)

    def _set_status(self, status: RunStatus) -> None:
        self.manifest.status = status
        self.manifest.updated_at = utc_now()
        self.writer.save(force=True)

    def set_prefect(self, *, api_url: str | None = None, parent_flow_run_id: str | None = None) -> None:
        with self._lock:
            if api_url:
                self.manifest.prefect.api_url = api_url
            if parent_flow_run_id:
                self.manifest.prefect.parent_flow_run_id = parent_flow_run_id
            self.writer.save(force=True)

    def set_instructions(self, records: list[Any]) -> None:
        with self._lock:
            self.manifest.instructions = records
            self.writer.save(force=True)

    def begin_milestone(self, name: str, flow_run_id: str | None = None) -> None:
        with self._lock:
            record = self._milestone(name)
            record.status = "running"
            record.started_at = utc_now()
            record.flow_run_id = flow_run_id
            self.manifest.updated_at = record.started_at
            self.writer.save(force=True)
        self.events.emit(ev.MilestoneStarted(milestone=name, flow_run_id=flow_run_id))

    def end_milestone(self, name: str, status: str) -> None:
        with self._lock:
            record = self._milestone(name)
            record.status = status  # type: ignore[assignment]
            record.finished_at = utc_now()
            self.manifest.updated_at = record.finished_at
            self.writer.save(force=True)
        self.events.emit(ev.MilestoneFinished(milestone=name, status=status))

    def _milestone(self, name: str) -> MilestoneRecord:
        for record in self.manifest.milestones:
            if record.name == name:
                return record
        raise RecordError(f"unknown milestone {name!r}")

    # -- tool calls ----------------------------------------------------------------------------------------
    def new_tool_call(self, **fields: Any) -> ToolCallRecord:
        with self._lock:
            call = ToolCallRecord(id=f"tc-{next(self._ids):04d}", **fields)
            self.manifest.tool_calls.append(call)
            self.writer.save()
        return call

    def touch(self, *, force: bool = False) -> None:
        """Persist tool-call progress (paced unless forced)."""
        with self._lock:
            self.manifest.updated_at = utc_now()
            self.writer.save(force=force)

    def finish_tool_call(self, call: ToolCallRecord) -> None:
        with self._lock:
            self.writer.mark_finished(call)
            self.manifest.approval_cache.hits = self.cache.hits
            self.manifest.approval_cache.misses = self.cache.misses
            self.manifest.updated_at = utc_now()
            self.writer.save()

    # -- approvals -----------------------------------------------------------------------------------------
    def new_approval_id(self) -> str:
        return f"ap-{next(self._approval_ids):04d}"

    def add_approval_listener(self, listener: ApprovalListener) -> None:
        self._approval_listeners.append(listener)

    def approval_pending(self, record: ApprovalRecord, request: ApprovalRequest) -> None:
        """A question is waiting (and, under Prefect, its flow run is about to pause): record and announce it."""
        with self._lock:
            self.manifest.approvals.append(record)
            self.manifest.pending_approval = record
            self._set_status("awaiting-approval")
        for listener in list(self._approval_listeners):
            listener(record, request)

    def approval_resolved(self, record: ApprovalRecord) -> None:
        with self._lock:
            record.resolved_at = utc_now()
            self.manifest.pending_approval = None
            self._set_status("running")

    # -- end -----------------------------------------------------------------------------------------------
    def compute_metrics(self) -> None:
        with self._lock:
            created = datetime.fromisoformat(self.manifest.created_at.replace("Z", "+00:00"))
            duration = (datetime.now(UTC) - created).total_seconds() * 1000
            self.manifest.approval_cache.hits = self.cache.hits
            self.manifest.approval_cache.misses = self.cache.misses
            self.manifest.metrics = compute_run_metrics(self.manifest, duration_ms=round(duration, 3))
            self.writer.save(force=True)

    def write_task_metrics(self) -> None:
        with self._lock:
            update_task_metrics(self.paths.task_metrics, self.manifest)

    def finish(
        self, status: RunStatus, exit_code: int, error: str | None = None, last: ev._Event | None = None
    ) -> None:
        """Final state: always written, whatever happened before. Idempotent.

        ``last`` is emitted after ``run.finished`` as the log's final line (``exec``'s summary)."""
        if self._finished:
            return
        self._finished = True
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=HEARTBEAT_INTERVAL_S)
        with self._lock:
            self.manifest.finished_at = utc_now()
            self.manifest.exit_code = exit_code
            self.manifest.error = self.redact(error) if error else None
            self.manifest.pending_approval = None
            self.compute_metrics()
            self._set_status(status)
        self.events.emit(ev.RunFinished(status=status, exit_code=exit_code))
        if last is not None:
            self.events.emit(last)
        self.events.close()
        self.tracer.shutdown()


def _redact_request(request: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    """Drop secret values from the request as recorded (env entries named like secrets, known values)."""
    from codex_orchestrator.redact import looks_secret

    redactor = Redactor(secrets)

    def walk(value: Any, in_env: bool = False, key: str = "") -> Any:
        if isinstance(value, dict):
            if in_env:
                return {k: walk(v, True, str(k)) for k, v in value.items()}
            return {k: walk(v, k == "env") for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            return REDACTED if in_env and key and looks_secret(key) else redactor(value)
        return value

    return walk(request)  # type: ignore[no-any-return]
