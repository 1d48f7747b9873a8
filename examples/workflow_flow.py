"""Workflow-as-code: gated tool calls composed in your own Prefect flow.

    PREFECT_API_URL=... python examples/workflow_flow.py PATH/TO/REPO

Every call passes the same gate as a request file's steps (approval, sandbox, PTY, retry) and lands in the
same records (``<repo>/.runs/<task>/cli/<run-id>/``). ``wait_for`` is a real dependency in the Prefect UI;
calls without one run at the same time.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow

from flows.workflow import gated_run


@flow(name="example-gated-workflow", log_prints=True)
def ship(repo: str, run_id: str | None = None) -> str:
    with gated_run(
        task="example-workflow", workspace=repo, profile=["read", "edit", "run"], run_id=run_id
    ) as run:
        survey = run.shell("survey", "ls")
        notes = run.edit(
            "notes", path="NOTES.md", content="Surveyed by a gated workflow.\n", wait_for=[survey]
        )
        lint = run.shell("count-lines", "wc -l calc.py", wait_for=[survey])  # runs beside `notes`
        run.shell("check", ["test", "-s", "NOTES.md"], wait_for=[notes, lint])
    return run.ref.run_id


if __name__ == "__main__":
    print(ship(str(Path(sys.argv[1]).resolve())))
