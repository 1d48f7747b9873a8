"""Workflow-as-code: gated tool calls composed in your own Prefect flow.

Usage: workflow_flow.py REPO    (REPO: a repository with a calc.py, such as a copy of examples/sample-repo)

From the directory that holds examples/ (the flow edits REPO: give it a copy), with the project's venv active:

    cp -r examples/sample-repo repo
    python examples/workflow_flow.py repo    # prints the run id; records in repo/.runs/example-workflow/

With PREFECT_API_URL set the run shows in that server's UI; without it Prefect starts a temporary server.
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
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    print(ship(str(Path(sys.argv[1]).resolve())))
