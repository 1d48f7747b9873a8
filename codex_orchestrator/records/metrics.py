"""Metrics: a run's snapshot computed from its manifest (pure), and the task's ``metrics.json`` of all runs."""

from __future__ import annotations

import fcntl
import json
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from codex_orchestrator.errors import RecordError
from codex_orchestrator.records.atomic import write_atomic
from codex_orchestrator.records.manifest import Manifest, RunMetrics


def compute_run_metrics(manifest: Manifest, *, duration_ms: float | None = None) -> RunMetrics:
    calls = manifest.tool_calls
    status = Counter(c.status for c in calls)
    sources = Counter(c.approval_source for c in calls if c.approval_source)
    guardrails = [c for c in calls if c.milestone == "verification"]
    attempts = sum(len(c.attempts) for c in calls)
    return RunMetrics(
        tool_calls=len(calls),
        succeeded=status["succeeded"],
        failed=status["failed"],
        denied=status["denied"],
        timed_out=status["timed-out"],
        attempts=attempts,
        retries=sum(max(0, len(c.attempts) - 1) for c in calls),
        approvals_by_source=dict(sorted(sources.items())),
        cache_hits=manifest.approval_cache.hits,
        cache_misses=manifest.approval_cache.misses,
        duration_ms=duration_ms,
        tool_call_ms_total=round(sum(c.duration_ms or 0.0 for c in calls), 3),
        guardrails_passed=sum(1 for c in guardrails if c.status == "succeeded"),
        guardrails_failed=sum(1 for c in guardrails if c.status != "succeeded"),
    )


class RunRow(BaseModel):
    run_id: str
    status: str
    created_at: str
    finished_at: str | None
    metrics: RunMetrics


class TaskAggregates(BaseModel):
    runs: int = 0
    succeeded_runs: int = 0
    failed_runs: int = 0
    tool_calls: int = 0
    attempts: int = 0
    retries: int = 0
    approvals_by_source: dict[str, int] = Field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    mean_run_duration_ms: float | None = None


class TaskMetrics(BaseModel):
    task_id: str
    runs: list[RunRow] = Field(default_factory=list)
    aggregates: TaskAggregates = Field(default_factory=TaskAggregates)


def aggregate(rows: list[RunRow]) -> TaskAggregates:
    sources: Counter[str] = Counter()
    for row in rows:
        sources.update(row.metrics.approvals_by_source)
    durations = [r.metrics.duration_ms for r in rows if r.metrics.duration_ms is not None]
    return TaskAggregates(
        runs=len(rows),
        succeeded_runs=sum(1 for r in rows if r.status == "succeeded"),
        failed_runs=sum(1 for r in rows if r.status in ("failed", "denied", "cancelled")),
        tool_calls=sum(r.metrics.tool_calls for r in rows),
        attempts=sum(r.metrics.attempts for r in rows),
        retries=sum(r.metrics.retries for r in rows),
        approvals_by_source=dict(sorted(sources.items())),
        cache_hits=sum(r.metrics.cache_hits for r in rows),
        cache_misses=sum(r.metrics.cache_misses for r in rows),
        mean_run_duration_ms=round(sum(durations) / len(durations), 3) if durations else None,
    )


def update_task_metrics(path: Path, manifest: Manifest) -> TaskMetrics:
    """Insert or replace this run's row in the task's metrics file, under an exclusive lock (concurrent runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_suffix(".lock")
    try:
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = _read(path, manifest.task_id)
            rows = [r for r in current.runs if r.run_id != manifest.run_id]
            rows.append(
                RunRow(
                    run_id=manifest.run_id,
                    status=manifest.status,
                    created_at=manifest.created_at,
                    finished_at=manifest.finished_at,
                    metrics=manifest.metrics,
                )
            )
            rows.sort(key=lambda r: r.created_at)
            result = TaskMetrics(task_id=manifest.task_id, runs=rows, aggregates=aggregate(rows))
            write_atomic(path, result.model_dump_json(indent=2).encode("utf-8"))
            return result
    except OSError as exc:
        raise RecordError(f"cannot update task metrics: {exc.strerror}", path=str(path)) from exc


def _read(path: Path, task_id: str) -> TaskMetrics:
    if not path.exists():
        return TaskMetrics(task_id=task_id)
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return TaskMetrics.model_validate(data)
    except ValueError as exc:
        # Never silently drop history: a damaged file is an error the user must look at.
        raise RecordError(
            f"task metrics file is damaged ({exc}); move it aside to start afresh", path=str(path)
        ) from exc
