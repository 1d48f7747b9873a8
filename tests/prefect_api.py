"""Reading what the UI shows from the Prefect API, as the UI does: a task run's state reaches the API through
the server's task-run recorder, which writes in batches at least every ``FLUSH_INTERVAL_S`` (flows/server_tuning.py),
so a read right after a run may come before that flush."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

# Only a bound on a broken server: a flush comes every FLUSH_INTERVAL_S (seconds), but a loaded machine may
# delay it by much more.
FLUSH_WAIT_S = 120.0
_POLL_S = 0.2


def read_final_task_run(client: SyncPrefectClient, task_run_id: UUID) -> Any:
    """The task run once the API has it in a final state (its last state event written)."""
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + FLUSH_WAIT_S
    while True:
        try:
            task_run = client.read_task_run(task_run_id)
        except ObjectNotFound:
            task_run = None
        if task_run is not None and task_run.state is not None and task_run.state.is_final():
            return task_run
        assert time.monotonic() < deadline, f"task run {task_run_id} not final in the API: {task_run}"
        time.sleep(_POLL_S)
