"""The task runner a run's milestones submit tool calls to, chosen by the request (``runner``)."""

from __future__ import annotations

from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from codex_orchestrator.errors import RequestError
from codex_orchestrator.request import RunRequest


def task_runner_for(request: RunRequest) -> TaskRunner[Any]:
    """Threads of this process (as many as ``max_parallel``), or Dask worker processes (prefect-dask)."""
    if request.runner.kind in ("thread", "task-workers"):  # task workers take calls from Prefect's API
        return ThreadPoolTaskRunner(max_workers=request.max_parallel)
    try:
        from prefect_dask.task_runners import DaskTaskRunner
    except ImportError as exc:  # an optional extra: pip install 'codex-orchestrator[dask]'
        raise RequestError(
            "runner kind 'dask' needs prefect-dask: pip install 'codex-orchestrator[dask]'",
            field="runner.kind",
        ) from exc
    runner: TaskRunner[Any]
    if request.runner.address:
        runner = DaskTaskRunner(address=request.runner.address)
        return runner
    runner = DaskTaskRunner(
        cluster_kwargs={
            "n_workers": request.runner.workers,
            "processes": True,
            "threads_per_worker": max(1, request.max_parallel // request.runner.workers),
            "dashboard_address": None,
        }
    )
    return runner
