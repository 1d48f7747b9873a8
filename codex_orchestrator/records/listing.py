"""Finding runs and their pending approvals under a runs directory (``runs``, ``approvals``, ``approve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_orchestrator.call_recorder import process_gone
from codex_orchestrator.errors import OrchestratorError, RequestError
from codex_orchestrator.records.manifest import ApprovalRecord
from codex_orchestrator.records.paths import find_run_dir
from codex_orchestrator.records.store import RUN_FILENAME, RunRef, RunStore
from codex_orchestrator.run import effective_status


class NothingPending(OrchestratorError):
    """``approve`` found nothing to answer (exit 1: not a usage error, the run is simply not waiting)."""


def run_store(runs_dir: Path, run_id: str) -> RunStore:
    """The records of ``run_id`` under ``runs_dir`` (any task)."""
    run_dir = find_run_dir(runs_dir, run_id, RUN_FILENAME)
    state = RunStore.read_run_file(run_dir / RUN_FILENAME)
    workspace = (run_dir / Path(*[".."] * len(Path(state.run_dir).parts))).resolve()
    return RunStore(
        RunRef(
            run_id=run_id, task_id=state.task_id, runs_dir=str(run_dir.parents[2]), workspace=str(workspace)
        )
    )


def list_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """Every run under ``runs_dir``, newest first, with the status to report (stale heartbeat: interrupted)."""
    rows: list[dict[str, Any]] = []
    for path in runs_dir.glob(f"*/cli/*/{RUN_FILENAME}"):
        state = RunStore.read_run_file(path)
        rows.append(
            {
                "run_id": state.run_id,
                "task_id": state.task_id,
                "mode": state.mode,
                "status": effective_status(state),
                "created_at": state.created_at,
                "finished_at": state.finished_at,
                "exit_code": state.exit_code,
            }
        )
    rows.sort(key=lambda r: (r["created_at"], r["run_id"]), reverse=True)
    return rows


def pending_approvals(runs_dir: Path, run_id: str | None = None) -> list[ApprovalRecord]:
    """Pending approvals of one run, or of every unfinished run under ``runs_dir``."""
    if run_id is not None:
        stores = [run_store(runs_dir, run_id)]
    else:
        stores = [run_store(runs_dir, str(row["run_id"])) for row in list_runs(runs_dir)]
    return [a for store in stores for a in live_pending(store)]


def live_pending(store: RunStore) -> list[ApprovalRecord]:
    """Pending approvals whose asking process may still be waiting (one killed on this host is not)."""
    return [a for a in store.approvals() if a.outcome == "pending" and not process_gone(a.asked_by)]


def choose_pending(store: RunStore, approval_id: str | None) -> tuple[ApprovalRecord, str | None]:
    """The approval ``approve`` answers, and the Prefect API URL of its run.

    Without ``approval_id`` the run must have exactly one pending approval; otherwise the error lists them."""
    run_id = store.ref.run_id
    pending = [a for a in live_pending(store) if a.flow_run_id]
    api_url = store.read_run().prefect.api_url
    if approval_id is not None:
        for record in pending:
            if record.approval_id == approval_id:
                return record, api_url
        raise RequestError(
            f"run {run_id} has no pending approval {approval_id!r}"
            + (f" (pending: {', '.join(a.approval_id for a in pending)})" if pending else ""),
            field="--approval",
        )
    if not pending:
        raise NothingPending(f"run {run_id} has no pending approval (status: {store.read_run().status})")
    if len(pending) > 1:
        listed = "; ".join(f"{a.approval_id} (step {a.step}: {a.reason})" for a in pending)
        raise RequestError(
            f"run {run_id} has {len(pending)} pending approvals, pick one with --approval: {listed}"
        )
    return pending[0], api_url
