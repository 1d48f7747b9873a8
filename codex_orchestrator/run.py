"""The owner of one run: opens its records (new or resumed), keeps ``run.json`` and the folded manifest current
(status, milestones, heartbeat), and finishes it. Tool calls record themselves (call_recorder.py), in any process.

``run`` and ``exec`` both open, record and finish a run through ``RunOwner``; only how they run calls differs.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codex_orchestrator.clock import parse_utc, utc_now
from codex_orchestrator.errors import RecordError, RequestError
from codex_orchestrator.notify import attach_notifier
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import EventLog
from codex_orchestrator.records.manifest import (
    ApprovalRecord,
    ChainHead,
    ExportFailures,
    InstructionRecord,
    Manifest,
    MilestoneRecord,
    RunState,
    RunStatus,
    TelemetryRecord,
)
from codex_orchestrator.records.metrics import compute_run_metrics
from codex_orchestrator.records.paths import ensure_runs_dir, relative_to_workspace
from codex_orchestrator.records.snapshots import SnapshotPaths, write_snapshots
from codex_orchestrator.records.store import RunRef, RunStore, forget_folder, shared_folder
from codex_orchestrator.redact import REDACTED, Redactor, looks_secret
from codex_orchestrator.telemetry import RunTracer, process_telemetry

MILESTONES = ("foundation", "exec", "telemetry", "verification")
HEARTBEAT_INTERVAL_S = 5.0
# A run whose heartbeat is older than this, and that is not finished, is reported interrupted.
STALE_HEARTBEAT_S = 3 * HEARTBEAT_INTERVAL_S
# Exit codes of `run`/`exec` (documented in docs/cli.md): the command's own code is used by `exec` when it ran.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
FINAL_RUN_STATUSES = frozenset(
    {"succeeded", "failed", "denied", "cancelled", "interrupted", "changes-requested"}
)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: the run ends ``interrupted`` with exit code 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by signal {signum}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def interrupt_exit_code(exc: BaseException) -> int:
    return exc.exit_code if isinstance(exc, Interrupted) else EXIT_INTERRUPTED


# Runs this process has started and not finished: what an interrupt must mark before the process ends.
_ACTIVE: dict[str, RunOwner] = {}
_ACTIVE_LOCK = threading.Lock()


def active_runs() -> list[RunOwner]:
    with _ACTIVE_LOCK:
        return list(_ACTIVE.values())


def interrupt_active_runs(exit_code: int, reason: str) -> list[RunOwner]:
    """Finish every run this process owns as ``interrupted``; returns them (their pending approvals are
    closed in their records too)."""
    owners = active_runs()
    for owner in owners:
        owner.finish("interrupted", exit_code, error=reason)
    return owners


class RunOwner:
    """A handle on one run's own state (``run.json``), from ``create``/``resume``/``open`` to ``finish``.

    It keeps no state of its own: every change is a locked read-modify-write of ``run.json`` followed by a
    fold of the manifest, so the parent flow, a milestone flow in another process and the heartbeat can all
    write. Only the process that ``start``s the run beats its heartbeat."""

    def __init__(self, store: RunStore, redact: Redactor, *, trace: bool = True) -> None:
        self.store = store
        store.redact = redact
        self.ref = store.ref
        self.paths = store.paths
        self.redact = redact
        self.workspace = Path(self.ref.workspace).resolve()
        self.folder = shared_folder(store)
        self.events = EventLog(self.paths.events, self.ref.run_id, redact)
        attach_notifier(self.events, store)  # the request's notification targets (run.* and the rest)
        self.tracer = RunTracer(
            self.paths.traces if trace else None,
            run_id=self.ref.run_id,
            task_id=self.ref.task_id,
            redact=redact,
            export=_export_requested(store),
        )
        self._export_baseline = self.tracer.export_counters()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._finished = False

    # -- opening --------------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        ref: RunRef,
        *,
        request: dict[str, Any],
        mode: str = "run",
        goal: str = "",
        gate_enabled: bool = True,
        secrets: Iterable[str] = (),
        with_milestones: bool = True,
        trace: bool = True,
        private: dict[str, Any] | None = None,
        telemetry_export: bool = True,
    ) -> RunOwner:
        """A new run: its directory must not exist yet (a run id is used once).

        ``request`` is shown, redacted, in the manifest; ``private`` (default: ``request``) is kept as given in
        ``request.json`` (mode 0600) for the run's other processes, and never sent to Prefect."""
        process_telemetry()  # a bad OTEL_* variable is refused before anything is written
        store = RunStore(ref)
        ensure_runs_dir(Path(ref.runs_dir))  # with its own .gitignore: an agent's `git add -A` skips records
        try:
            store.create_dirs()
        except FileExistsError:
            raise RequestError(
                f"run {ref.run_id!r} already exists at {store.run_dir}; choose another --run-id, or "
                f"`codex-orchestrator resume {ref.run_id}` to continue it",
                field="run_id",
            ) from None
        redact = Redactor(secrets)
        workspace = Path(ref.workspace).resolve()
        now = utc_now()
        state = RunState(
            run_id=ref.run_id,
            task_id=ref.task_id,
            mode=mode,
            status="queued",
            goal=redact(goal),
            run_dir=relative_to_workspace(store.run_dir, workspace),
            created_at=now,
            updated_at=now,
            heartbeat_at=now,
            request=redact_request(request, redact),
            gate_enabled=gate_enabled,
            milestones=[MilestoneRecord(name=m) for m in MILESTONES] if with_milestones else [],
            telemetry=TelemetryRecord(export_requested=telemetry_export),
        )
        store.write_request(request if private is None else private)
        store.write_run(state)
        owner = cls(store, redact, trace=trace)
        owner.refresh()
        return owner

    @classmethod
    def open(cls, ref: RunRef, *, secrets: Iterable[str] = (), trace: bool = True) -> RunOwner:
        """The run as another process (a milestone flow on a worker) sees it."""
        store = RunStore(ref)
        if not store.exists():
            raise RequestError(f"no run {ref.run_id!r} at {store.run_dir}", field="run_id")
        return cls(store, Redactor(secrets), trace=trace)

    @classmethod
    def resume(cls, ref: RunRef, *, secrets: Iterable[str] = (), trace: bool = True) -> RunOwner:
        """Re-enter a run whose process died: succeeded calls stay, the rest run again."""
        owner = cls.open(ref, secrets=secrets, trace=trace)
        if owner.store.read_run().status == "succeeded":
            raise RequestError(f"run {ref.run_id!r} already succeeded: nothing to resume", field="run_id")

        def reopen(state: RunState) -> None:
            state.resumed_at.append(utc_now())
            state.finished_at = None
            state.exit_code = None
            state.error = None
            state.status = "queued"
            state.chain = None  # the log grows again: the head is recorded when the run finishes anew
            for record in state.milestones:
                if record.status not in ("succeeded", "skipped"):
                    record.status = "pending"

        owner.update(reopen)
        owner.close_pending_approvals("the process that asked was gone before an answer came")
        return owner

    # -- properties -----------------------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.ref.run_id

    @property
    def manifest_rel(self) -> str:
        return relative_to_workspace(self.paths.manifest, self.workspace)

    def manifest(self) -> Manifest:
        return self.folder.manifest()

    def state(self) -> RunState:
        return self.store.read_run()

    # -- run state ------------------------------------------------------------------------------------------
    def update(self, change: Callable[[RunState], None], *, durable: bool = True) -> RunState:
        def stamped(state: RunState) -> None:
            change(state)
            state.updated_at = utc_now()

        with self._lock:
            state = self.store.update_run(stamped, durable=durable)
            self.refresh()
            return state

    def refresh(self) -> None:
        self.folder.write(durable=False)

    def start(self) -> None:
        """The run is running, in this process: its heartbeat beats here from now on."""

        self._export_baseline = self.tracer.export_counters()

        def running(state: RunState) -> None:
            state.status = "running"
            state.heartbeat_at = utc_now()
            state.telemetry = self._telemetry_record(state.telemetry)

        state = self.update(running)
        with _ACTIVE_LOCK:
            _ACTIVE[self.run_id] = self
        self.events.emit(
            ev.RunStarted(
                task_id=self.ref.task_id,
                manifest=self.manifest_rel,
                mode=state.mode,
                gate_enabled=state.gate_enabled,
            )
        )
        self._heartbeat = threading.Thread(target=self._beat, name=f"heartbeat-{self.run_id}", daemon=True)
        self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_INTERVAL_S):
            with self._lock:
                if self._finished:
                    return

                def beat(state: RunState) -> None:
                    state.heartbeat_at = utc_now()

                self.store.update_run(beat, durable=False)
                self.refresh()  # also catches up a paced write a call process skipped

    def set_prefect(self, *, api_url: str | None = None, parent_flow_run_id: str | None = None) -> None:
        def change(state: RunState) -> None:
            if api_url:
                state.prefect.api_url = api_url
            if parent_flow_run_id:
                state.prefect.parent_flow_run_id = parent_flow_run_id

        self.update(change)

    def set_instructions(self, records: list[InstructionRecord]) -> None:
        def change(state: RunState) -> None:
            state.instructions = records

        self.update(change)

    def begin_milestone(self, name: str, flow_run_id: str | None = None) -> None:
        def change(state: RunState) -> None:
            record = _milestone(state, name)
            record.status = "running"
            record.started_at = utc_now()
            record.finished_at = None
            record.flow_run_id = flow_run_id

        self.update(change)
        self.events.emit(ev.MilestoneStarted(milestone=name, flow_run_id=flow_run_id))

    def end_milestone(self, name: str, status: str) -> None:
        def change(state: RunState) -> None:
            record = _milestone(state, name)
            record.status = status  # type: ignore[assignment]
            record.finished_at = utc_now()

        self.update(change)
        self.events.emit(ev.MilestoneFinished(milestone=name, status=status))

    def milestone_status(self, name: str) -> str:
        return _milestone(self.state(), name).status

    # -- end ------------------------------------------------------------------------------------------------
    def compute_metrics(self) -> None:
        manifest = self.manifest()
        duration = (datetime.now(UTC) - parse_utc(manifest.created_at)).total_seconds() * 1000
        metrics = compute_run_metrics(manifest, duration_ms=round(duration, 3))

        def change(state: RunState) -> None:
            state.metrics = metrics

        self.update(change)

    def write_snapshots(self) -> None:
        """The task's metrics snapshots, from its runs' event logs (records/snapshots.py). They can always be
        recomputed (`metrics --recompute`), so failing to write them does not fail the run: it says why."""
        try:
            write_snapshots(SnapshotPaths(Path(self.ref.runs_dir), self.ref.task_id))
        except (RecordError, OSError) as exc:
            print(f"codex-orchestrator: metrics snapshots not written: {exc}", file=sys.stderr)

    def finish(
        self, status: RunStatus, exit_code: int, error: str | None = None, last: ev._Event | None = None
    ) -> None:
        """Final state: always written, whatever happened before. Idempotent.

        ``last`` is emitted after ``run.finished`` as the log's final line (``exec``'s summary)."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        with _ACTIVE_LOCK:
            _ACTIVE.pop(self.run_id, None)
        self._stop.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=HEARTBEAT_INTERVAL_S)
        self.tracer.flush()  # bounded: the manifest records whether the run's telemetry got out
        now = utc_now()

        def change(state: RunState) -> None:
            state.telemetry = self._telemetry_record(state.telemetry)
            state.finished_at = now
            state.exit_code = exit_code
            state.error = self.redact(error) if error else None
            for record in state.milestones:
                if record.status == "running":
                    record.status = "failed"
                    record.finished_at = now
            state.status = status

        self.update(change)
        # A question still open when the run ends can no longer be answered: its waiter is gone.
        self.close_pending_approvals(f"the run ended {status} before an answer came")
        self.compute_metrics()
        self.events.emit(ev.RunFinished(status=status, exit_code=exit_code))
        if last is not None:
            self.events.emit(last)
        head = ChainHead(seq=self.events.last_seq, hash=self.events.last_hash)
        self.events.close()

        def seal(state: RunState) -> None:
            state.chain = head

        with self._lock:
            self.store.update_run(seal)
            self.folder.write(durable=True)
        forget_folder(self.store)
        self.write_snapshots()
        self.tracer.shutdown()

    def _telemetry_record(self, prior: TelemetryRecord) -> TelemetryRecord:
        """Where this run's telemetry goes, and the export failures since it started here (counted once)."""
        failures = ExportFailures()
        for signal, now in self.tracer.export_counters().items():
            before = self._export_baseline.get(signal)
            failed = now.failures - (before.failures if before else 0)
            dropped = now.dropped - (before.dropped if before else 0)
            setattr(failures, signal, failed)
            failures.dropped += dropped
            if failed and now.last_error:
                failures.last_error = self.redact(now.last_error)
        return TelemetryRecord(
            export=self.tracer.export_state.value,
            export_requested=prior.export_requested,
            protocol=self.tracer.protocol,
            endpoint=self.tracer.endpoint,
            export_failures=failures,
        )

    def close_pending_approvals(self, reason: str) -> list[ApprovalRecord]:
        """Mark every question still waiting as cancelled (the asking process is going away); returns them."""
        closed: list[ApprovalRecord] = []
        for record in self.store.approvals():
            if record.outcome == "pending":
                record.outcome = "cancelled"
                record.answer_reason = reason
                record.resolved_at = utc_now()
                self.store.write_approval(record)
                # The approval ledger is the event chain: the cancellation is in it, as every answer is.
                self.events.emit(
                    ev.ApprovalResolved(
                        tool_call_id=record.tool_call_id,
                        approval_id=record.approval_id,
                        outcome="cancelled",
                        source="policy",
                        reason=reason,
                    )
                )
                closed.append(record)
        return closed

    def close(self) -> None:
        """Release this handle's files without finishing the run (a milestone flow is done with it)."""
        self.events.close()
        self.tracer.shutdown()


def _export_requested(store: RunStore) -> bool:
    try:
        return store.read_run().telemetry.export_requested
    except RecordError:
        return True  # not written yet (a handle opened while the run is being created)


def _milestone(state: RunState, name: str) -> MilestoneRecord:
    for record in state.milestones:
        if record.name == name:
            return record
    raise RecordError(f"unknown milestone {name!r}")


def redact_request(request: dict[str, Any], redact: Redactor) -> dict[str, Any]:
    """The request as recorded: known secret values and env entries named like secrets become ``***``."""

    def walk(value: Any, in_env: bool = False, key: str = "") -> Any:
        if isinstance(value, dict):
            if in_env:
                return {k: walk(v, True, str(k)) for k, v in value.items()}
            return {k: walk(v, k == "env") for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            return REDACTED if in_env and key and looks_secret(key) else redact(value)
        return value

    return walk(request)  # type: ignore[no-any-return]


def run_outcome(manifest: Manifest, *, required_ok: bool = True) -> RunStatus:
    """A finished run's status (docs/verification.md), first match wins:

    1. ``denied`` if a call that counts was refused;
    2. ``changes-requested`` if the review asked for changes;
    3. ``succeeded`` if every call that counts succeeded, every required guardrail passed, the review (when
       the policy requires one) approved, and the milestones agree (``required_ok``);
    4. else ``failed`` (a skipped call means one failed).

    Calls that count: every call but advisory guardrails', the review's own (review command, reviewer) and an
    agent's own tool calls (its step counts: a call the gate declined was told to the agent, which went on)."""
    review = manifest.review
    ignored = {g.call_id for g in manifest.guardrails if not g.required and g.call_id}
    if review is not None:
        ignored.update(i for i in (review.command_call_id, review.reviewer_call_id) if i)
    calls = [c for c in manifest.tool_calls if c.id not in ignored and c.parent_call_id is None]
    if any(c.status == "denied" for c in calls):
        return "denied"
    if review is not None and review.verdict == "changes-requested":
        return "changes-requested"
    review_ok = review is None or review.policy != "required" or review.verdict == "approved"
    guardrails_ok = all(g.result == "passed" for g in manifest.guardrails if g.required)
    if required_ok and review_ok and guardrails_ok and all(c.status == "succeeded" for c in calls):
        return "succeeded"
    return "failed"


def effective_status(state: RunState, now: datetime | None = None) -> str:
    """The status to report: an unfinished run whose heartbeat went stale is ``interrupted``."""
    if state.status in FINAL_RUN_STATUSES:
        return state.status
    age = ((now or datetime.now(UTC)) - parse_utc(state.heartbeat_at)).total_seconds()
    return "interrupted" if age > STALE_HEARTBEAT_S else state.status
