"""The records of one run as files that several processes write safely, and the manifest folded from them.

Layout of ``<runs_dir>/<task>/cli/<run-id>/``::

    run.json              the run itself (status, milestones, instructions, Prefect ids); written by the run's owner
    request.json          the validated request as given (mode 0600); what tasks in other processes read back
    calls/<call-id>.json  one tool call; written only by the process that runs that call
    approvals/<id>.json   one approval question and its answer; written by the process that asked
    cache/<sha>.json      approve-for-session grants, created once (O_EXCL) by whichever call got them
    events.jsonl          every process appends; ``seq`` is allocated under an flock (records/events.py)
    traces.jsonl          finished spans, appended by every process
    manifest.json         the projection: ``fold(run.json, calls/*, approvals/*)``, rewritten atomically

Every record file is replaced atomically (temp file + rename), so a reader or a killed writer only ever leaves a
whole document. ``manifest.json`` is never edited, only folded: ``ManifestFolder().render`` over the same record
files gives the same bytes, which is what ``codex-orchestrator manifest --rebuild`` relies on.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from codex_orchestrator.errors import RecordError
from codex_orchestrator.records.agent_fold import AgentEventsReader
from codex_orchestrator.records.atomic import write_atomic
from codex_orchestrator.records.manifest import (
    ApprovalRecord,
    CacheCounters,
    InstanceStats,
    Manifest,
    RunState,
    ToolCallRecord,
)
from codex_orchestrator.records.paths import RunPaths, validate_run_id, validate_task_id
from codex_orchestrator.redact import Redactor

RUN_FILENAME = "run.json"
REQUEST_FILENAME = "request.json"
CALLS_DIRNAME = "calls"
APPROVALS_DIRNAME = "approvals"
CACHE_DIRNAME = "cache"
_LOCK_FILENAME = ".manifest.lock"
_RUN_LOCK_FILENAME = ".run.lock"
# The folder spends at most ~1/PACING_FACTOR of wall time rewriting a run's manifest for call progress, and
# rewrites it for progress at most every MIN_REWRITE_INTERVAL_S: a call's start and end are not worth a fold
# each on the hot path. A progress fold that was skipped is done by a catch-up timer when it falls due, so the
# manifest on disk is at most that far behind the call files while the process lives.
PACING_FACTOR = 20.0
MIN_REWRITE_INTERVAL_S = 0.2


class RunRef(BaseModel):
    """Where a run's records live: all a flow or task in any process needs to find them (no secrets)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    task_id: str
    runs_dir: str  # absolute
    workspace: str  # absolute

    @property
    def paths(self) -> RunPaths:
        return RunPaths(Path(self.runs_dir), validate_task_id(self.task_id), validate_run_id(self.run_id))

    @property
    def run_dir(self) -> Path:
        return self.paths.run_dir


def cache_file_name(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32] + ".json"


class RunStore:
    """Reads and writes the record files of one run. Holds no run state of its own: any process may open one."""

    def __init__(self, ref: RunRef, redact: Redactor | None = None) -> None:
        self.ref = ref
        # Every record passes it value by value before it is written (a secret may be escaped in JSON text).
        self.redact = redact or Redactor()
        self.paths = ref.paths
        self.run_dir = self.paths.run_dir
        self.calls_dir = self.run_dir / CALLS_DIRNAME
        self.approvals_dir = self.run_dir / APPROVALS_DIRNAME
        self.cache_dir = self.run_dir / CACHE_DIRNAME

    # -- the run ------------------------------------------------------------------------------------------
    @property
    def run_file(self) -> Path:
        return self.run_dir / RUN_FILENAME

    @property
    def request_file(self) -> Path:
        return self.run_dir / REQUEST_FILENAME

    def exists(self) -> bool:
        return self.run_file.exists()

    def create_dirs(self) -> None:
        """Make the run directory (refusing one that exists) and its record folders."""
        try:
            self.run_dir.parent.mkdir(parents=True, exist_ok=True)
            self.run_dir.mkdir()
        except FileExistsError:
            raise
        except OSError as exc:
            raise RecordError(f"cannot create run directory: {exc.strerror}", path=str(self.run_dir)) from exc
        for folder in (self.calls_dir, self.approvals_dir, self.cache_dir):
            folder.mkdir(exist_ok=True)

    def _dump(self, record: BaseModel) -> bytes:
        if not self.redact.active:
            return record.model_dump_json().encode("utf-8")
        data = record.model_dump(mode="json")
        clean = self.redact.tree(data)
        if clean == data:
            return record.model_dump_json().encode("utf-8")
        return type(record).model_validate(clean).model_dump_json().encode("utf-8")

    def write_run(self, state: RunState, *, durable: bool = True) -> None:
        write_atomic(self.run_file, self._dump(state), durable=durable)

    def read_run(self) -> RunState:
        return self.read_run_file(self.run_file)

    @staticmethod
    def read_run_file(path: Path) -> RunState:
        return _read_model(path, RunState)  # type: ignore[no-any-return]

    def update_run(self, change: Callable[[RunState], None], *, durable: bool = True) -> RunState:
        """Read-modify-write ``run.json`` under the run's lock: any process may change the run's own state."""
        with self._run_lock():
            state = self.read_run()
            change(state)
            self.write_run(state, durable=durable)
            return state

    @contextlib.contextmanager
    def _run_lock(self) -> Iterator[None]:
        with _flock(self.run_dir / _RUN_LOCK_FILENAME):
            yield

    def write_request(self, request: dict[str, Any]) -> None:
        """The request as validated, secrets included: readable by the owner only, never sent to Prefect."""
        write_atomic(self.request_file, json.dumps(request).encode("utf-8"), mode=0o600)

    def read_request(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request_file.read_bytes())
        except OSError as exc:
            raise RecordError(
                f"cannot read the run's request: {exc.strerror}", path=str(self.request_file)
            ) from exc
        if not isinstance(data, dict):
            raise RecordError("the run's request is not a mapping", path=str(self.request_file))
        return data

    # -- tool calls ---------------------------------------------------------------------------------------
    def call_file(self, call_id: str) -> Path:
        return self.calls_dir / f"{call_id}.json"

    def write_call(self, call: ToolCallRecord, *, durable: bool = False) -> None:
        write_atomic(self.call_file(call.id), self._dump(call), durable=durable)

    def read_call(self, call_id: str) -> ToolCallRecord | None:
        path = self.call_file(call_id)
        if not path.exists():
            return None
        return _read_model(path, ToolCallRecord)  # type: ignore[no-any-return]

    # -- approvals ----------------------------------------------------------------------------------------
    def approval_file(self, approval_id: str) -> Path:
        return self.approvals_dir / f"{approval_id}.json"

    def write_approval(self, record: ApprovalRecord) -> None:
        write_atomic(self.approval_file(record.approval_id), self._dump(record))

    def read_approval(self, approval_id: str) -> ApprovalRecord | None:
        path = self.approval_file(approval_id)
        if not path.exists():
            return None
        return _read_model(path, ApprovalRecord)  # type: ignore[no-any-return]

    def approvals(self) -> list[ApprovalRecord]:
        return sorted(
            (_read_model(p, ApprovalRecord) for p in self.approvals_dir.glob("*.json")),
            key=lambda a: (a.requested_at, a.approval_id),
        )

    # -- the approve-for-session cache --------------------------------------------------------------------
    def cache_has(self, key: str) -> bool:
        return (self.cache_dir / cache_file_name(key)).exists()

    def cache_add(self, key: str) -> None:
        path = self.cache_dir / cache_file_name(key)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return
        except OSError as exc:
            raise RecordError(f"cannot record a session approval: {exc.strerror}", path=str(path)) from exc
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps({"key": key}))

    # -- the manifest -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def manifest_lock(self) -> Iterator[None]:
        """Serialise fold + write across processes, so an older fold never replaces a newer one."""
        with _flock(self.run_dir / _LOCK_FILENAME):
            yield


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RecordError(f"cannot lock: {exc.strerror}", path=str(path)) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_model(path: Path, model: type[Any]) -> Any:
    try:
        return model.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise RecordError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    except ValueError as exc:
        raise RecordError(f"not a valid record: {exc}", path=str(path)) from exc


def instance_stats(state: RunState, calls: list[dict[str, Any]]) -> list[InstanceStats]:
    """Per instance: the calls it ran (each run of a call counts where it ran), busy time, failures."""
    status = {i.name: i.status for i in state.instances}
    rows: dict[str, InstanceStats] = {n: InstanceStats(name=n, status=s) for n, s in status.items()}
    for call in calls:
        if call.get("status") == "skipped":
            continue
        name = str(call.get("instance") or "local")
        row = rows.setdefault(name, InstanceStats(name=name, status=status.get(name, "up")))
        row.calls += 1
        row.busy_ms = round(row.busy_ms + float(call.get("duration_ms") or 0.0), 3)
        if call.get("status") != "succeeded":
            row.failures += 1
        for earlier in call.get("lineage") or []:
            where = str(earlier.get("instance") or name)
            lost = rows.setdefault(where, InstanceStats(name=where, status=status.get(where, "up")))
            lost.calls += 1
            lost.failures += 1
    return [rows[n] for n in sorted(rows)]


class ManifestFolder:
    """Folds a run's record files into its manifest, re-reading only the files that changed since last time.

    A process keeps one folder per run it writes, so a fold costs a ``stat`` per record plus a read of what
    changed: flat per call as runs grow. ``render`` is deterministic: the same files give the same bytes."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._calls: dict[str, tuple[tuple[int, int, int], bytes, dict[str, Any]]] = {}
        self._agents = AgentEventsReader(store.paths.events)
        self._lock = threading.Lock()
        self._next_allowed = 0.0
        self._shown_calls = 0  # tool calls in the manifest this folder last wrote
        self._catch_up: threading.Timer | None = None  # a scheduled catch-up fold, until it runs
        self._paced_waiting = False  # a paced write found the lock taken (see write)
        self.writes = 0
        self.deferred = False  # a paced write was skipped: the catch-up timer, or a forced write, does it

    def _scan_calls(self) -> list[tuple[bytes, dict[str, Any]]]:
        seen: set[str] = set()
        try:
            entries = list(os.scandir(self.store.calls_dir))
        except FileNotFoundError:
            entries = []
        for entry in entries:
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            seen.add(entry.name)
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            sig = (st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self._calls.get(entry.name)
            if cached is not None and cached[0] == sig:
                continue
            try:
                raw = Path(entry.path).read_bytes()
            except FileNotFoundError:
                continue
            self._calls[entry.name] = (sig, raw, json.loads(raw))
        for name in list(self._calls):
            if name not in seen:
                del self._calls[name]
        items = [(raw, data) for _sig, raw, data in self._calls.values()]
        items.sort(key=lambda item: (item[1].get("order", 0), item[1]["id"]))
        return items

    def render(self) -> bytes:
        """The manifest as bytes: run.json's fields, the approvals, the counters, then the tool calls."""
        state = self.store.read_run()
        calls = self._scan_calls()
        approvals = self.store.approvals()
        pending = [a for a in approvals if a.outcome == "pending"]
        hits = sum(1 for _raw, c in calls if c.get("approval_cache") == "hit")
        misses = sum(1 for _raw, c in calls if c.get("approval_cache") == "miss")
        updated = max([state.updated_at, *(c.get("updated_at") or "" for _raw, c in calls)])
        stats = instance_stats(state, [c for _raw, c in calls])
        # Only a run with an agent step reads its event log here (for the agents' summaries).
        if any(c.get("kind") == "agent" for _raw, c in calls):
            self._agents.update()
            agents = self._agents.steps(c for _raw, c in calls)
        else:
            agents = []
        fields = {name: getattr(state, name) for name in RunState.model_fields}
        status = "awaiting-approval" if state.status == "running" and pending else state.status
        head = Manifest(
            **{
                **fields,
                "status": status,
                "updated_at": updated,
                "approvals": approvals,
                "approval_cache": CacheCounters(hits=hits, misses=misses),
                "pending_approval": pending[0] if pending else None,
                "pending_approvals": pending,
                "instance_stats": stats,
                "agents": agents,
                "tool_calls": [],
            }
        ).model_dump_json()
        # tool_calls is the manifest's last field: splice the calls' own bytes in, as model_dump_json would write.
        assert head.endswith('"tool_calls":[]}')
        body = head[: -len("]}")] + ",".join(raw.decode("utf-8") for raw, _c in calls) + "]}"
        return body.encode("utf-8")

    def manifest(self) -> Manifest:
        return Manifest.model_validate_json(self.render())

    def write(self, *, durable: bool = True, paced: bool = False) -> bytes | None:
        """Fold and replace manifest.json under the run's manifest lock; returns what was written.

        ``paced`` writes (tool-call progress: a call's start, its end) are left to a catch-up timer thread,
        which folds once the last fold is older than ``MIN_REWRITE_INTERVAL_S`` and than ``PACING_FACTOR``
        times its own cost: a call does not wait for a fold, and a run of 10,000 calls does not rewrite 10,000
        growing documents. Only the fold that first shows a tool call is done by the caller (a killed run's
        manifest shows that calls began). Run state changes and the final fold are never paced."""
        if not paced:
            with self._lock:
                data = self._write_locked(durable)
            self._after_release()
            return data
        # A call never waits for a fold in progress (the catch-up timer's, another thread's): it leaves a note,
        # and whoever holds the folder's lock schedules a catch-up for it when it lets go (_after_release).
        self._paced_waiting = True
        if not self._lock.acquire(blocking=False):
            return None
        try:
            self._paced_waiting = False
            if self._shown_calls:  # folded by the catch-up timer, at once if it is due already
                self.deferred = True
                self._schedule_catch_up()
                return None
            return self._write_locked(durable)
        finally:
            self._lock.release()
            self._after_release()

    def _after_release(self) -> None:
        # Read after the lock is let go: a paced writer notes before it tries the lock, so either it got the
        # lock itself or its note is seen here.
        if self._paced_waiting:
            with self._lock:
                self._paced_waiting = False
                self.deferred = True
                self._schedule_catch_up()

    def _write_locked(self, durable: bool) -> bytes:
        now = time.monotonic()
        with self.store.manifest_lock():
            data = self.render()
            write_atomic(self.store.paths.manifest, data, durable=durable)
        cost = time.monotonic() - now
        self._shown_calls = len(self._calls)
        self._next_allowed = time.monotonic() + max(MIN_REWRITE_INTERVAL_S, cost * PACING_FACTOR)
        self.deferred = False
        self.writes += 1
        return data

    def _schedule_catch_up(self) -> None:
        if self._catch_up is not None:
            return  # one is due already
        delay = max(0.0, self._next_allowed - time.monotonic())
        timer = threading.Timer(delay, self._catch_up_now)
        timer.daemon = True  # what it would write is in the call files: a process may exit without it
        self._catch_up = timer
        timer.start()

    def _catch_up_now(self) -> None:
        with self._lock:
            self._catch_up = None
            if not self.deferred:
                return  # a forced write caught up first
            if time.monotonic() < self._next_allowed:  # a write since pushed the next fold back
                self._schedule_catch_up()
                return
            with contextlib.suppress(RecordError):  # the run's directory went away: nothing to catch up
                self._write_locked(durable=False)
        self._after_release()

    def cancel_catch_up(self) -> None:
        with self._lock:
            if self._catch_up is not None:
                self._catch_up.cancel()
                self._catch_up = None


_FOLDERS: dict[Path, ManifestFolder] = {}
_FOLDERS_LOCK = threading.Lock()


def shared_folder(store: RunStore) -> ManifestFolder:
    """This process's folder for a run: its cache of parsed call files and its pacing outlive one call.
    (A cache only: any process may fold from the files alone.)"""
    with _FOLDERS_LOCK:
        folder = _FOLDERS.get(store.run_dir)
        if folder is None:
            folder = _FOLDERS[store.run_dir] = ManifestFolder(store)
        return folder


def forget_folder(store: RunStore) -> None:
    with _FOLDERS_LOCK:
        folder = _FOLDERS.pop(store.run_dir, None)
    if folder is not None:
        folder.cancel_catch_up()
