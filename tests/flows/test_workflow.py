"""The workflow-as-code API and the task runners: the example flow on a real server, and one request run
under threads and under Dask worker processes with equivalent manifests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, validate_events, validate_manifest

pytestmark = pytest.mark.prefect
CLI = [sys.executable, "-m", "codex_orchestrator.cli"]


def test_the_example_workflow_records_a_gated_run(prefect_server: str, workspace: Path) -> None:
    done = subprocess.run(
        [sys.executable, "examples/workflow_flow.py", str(workspace)],
        cwd=ROOT,
        env={**os.environ, "PREFECT_API_URL": prefect_server, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[-1]
    manifest = workspace / ".runs" / "example-workflow" / "cli" / run_id / "manifest.json"
    data = validate_manifest(manifest)
    validate_events(manifest.parent / "events.jsonl")
    assert data["status"] == "succeeded"
    calls = {c["step"]: c for c in data["tool_calls"]}
    assert set(calls) == {"survey", "notes", "count-lines", "check"}
    assert all(c["approval_source"] == "not-required" for c in calls.values())
    assert (workspace / "NOTES.md").read_text() == "Surveyed by a gated workflow.\n"


STEPS = [
    {"name": "a", "command": "echo a > a.txt"},
    {"name": "b", "command": "cat a.txt > b.txt", "needs": ["a"]},
    {"name": "c", "command": "cat a.txt > c.txt", "needs": ["a"]},
    {"name": "d", "command": "cat b.txt c.txt", "needs": ["b", "c"]},
]


def _run(
    workspace: Path, prefect_server: str, runner: dict[str, Any], run_id: str
) -> tuple[dict[str, Any], int]:
    request = {
        "task": "runners",
        "workspace": str(workspace),
        "profile": ["read", "edit", "run"],
        "runner": runner,
        "steps": STEPS,
    }
    path = workspace.parent / f"{run_id}.yaml"
    path.write_text(yaml.safe_dump(request))
    proc = subprocess.Popen(
        [*CLI, "run", str(path), "--run-id", run_id, "--no-prompt"],
        cwd=ROOT,
        env={**os.environ, "PREFECT_API_URL": prefect_server},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return validate_manifest(workspace / ".runs" / "runners" / "cli" / run_id / "manifest.json"), proc.pid


def _shape(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (c["id"], c["step"], c["status"], c["exit_code"], tuple(c["depends_on"]), c["approval_source"])
        for c in sorted(data["tool_calls"], key=lambda c: c["id"])
    ]


def test_threads_and_dask_worker_processes_give_equivalent_manifests(
    prefect_server: str, workspace: Path
) -> None:
    pytest.importorskip("prefect_dask")
    threads, thread_pid = _run(workspace, prefect_server, {"kind": "thread"}, "on-threads")
    dask, dask_pid = _run(workspace, prefect_server, {"kind": "dask", "workers": 2}, "on-dask")
    assert _shape(threads) == _shape(dask)
    assert threads["status"] == dask["status"] == "succeeded"
    # under threads every call ran in the CLI's own process; under Dask in worker processes
    assert {c["host"].rsplit(":", 1)[1] for c in threads["tool_calls"]} == {str(thread_pid)}
    assert str(dask_pid) not in {c["host"].rsplit(":", 1)[1] for c in dask["tool_calls"]}
    events = [
        json.loads(line)
        for line in (workspace / ".runs/runners/cli/on-dask/events.jsonl").read_text().splitlines()
    ]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # one log, several writers
