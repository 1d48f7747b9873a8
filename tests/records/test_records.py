"""Manifests (atomic, paced, schema-valid), the event log (ordered, append-only) and task metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codex_orchestrator.errors import RecordError, RequestError
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import EventLog, read_events
from codex_orchestrator.records.manifest import Manifest, ManifestWriter, ToolCallRecord, load_manifest
from codex_orchestrator.records.metrics import update_task_metrics
from codex_orchestrator.records.paths import RunPaths, artifact_key, find_run_dir, validate_task_id
from codex_orchestrator.run import RunRecorder
from codex_orchestrator.schemas import check_schemas
from tests.conftest import ROOT, SCHEMAS, validate_events, validate_manifest


def _recorder(tmp_path: Path, run_id: str = "run-1", secrets: list[str] | None = None) -> RunRecorder:
    paths = RunPaths(tmp_path / ".runs", "task-a", run_id)
    return RunRecorder(
        paths=paths, workspace=tmp_path, request={"env": {"API_TOKEN": "s3cr3t-value"}}, secrets=secrets
    )


def test_schemas_are_current() -> None:
    assert check_schemas(SCHEMAS) == [], "schemas are stale: run `codex-orchestrator schema`"


@pytest.mark.parametrize("bad", ["../../etc", "..", "a/b", "", ".hidden", "A", "x" * 65, "a..b"])
def test_task_ids_cannot_escape(bad: str) -> None:
    with pytest.raises(RequestError, match="task"):
        validate_task_id(bad)


def test_artifact_keys_are_stable_and_legal() -> None:
    assert artifact_key("demo_add.x", "manifest") == "demo-add-x-manifest"


def test_recorder_writes_a_valid_manifest_and_redacts(tmp_path: Path) -> None:
    rec = _recorder(tmp_path, secrets=["s3cr3t-value"])
    rec.start()
    call = rec.new_tool_call(step="s", milestone="exec", kind="shell", command="echo s3cr3t-value", cwd=".")
    call.status = "succeeded"
    rec.finish_tool_call(call)
    rec.finish("succeeded", 0)
    data = validate_manifest(rec.paths.manifest)
    text = rec.paths.manifest.read_text()
    assert "s3cr3t-value" not in text
    assert data["request"]["env"]["API_TOKEN"] == "***"
    assert data["run_dir"] == ".runs/task-a/cli/run-1"
    assert data["status"] == "succeeded"
    events = validate_events(rec.paths.events)
    assert "s3cr3t-value" not in rec.paths.events.read_text()
    assert events[0]["type"] == "run.started" and events[-1]["type"] == "run.finished"
    assert find_run_dir(tmp_path / ".runs", "run-1") == rec.paths.run_dir


def test_existing_run_is_never_overwritten(tmp_path: Path) -> None:
    _recorder(tmp_path).finish("succeeded", 0)
    before = (tmp_path / ".runs/task-a/cli/run-1/manifest.json").read_bytes()
    with pytest.raises(RequestError, match="already exists"):
        _recorder(tmp_path)
    assert (tmp_path / ".runs/task-a/cli/run-1/manifest.json").read_bytes() == before


def test_writer_splices_cached_fragments_into_the_same_document(tmp_path: Path) -> None:
    manifest = Manifest(
        run_id="r", task_id="t", run_dir="x", created_at="a", updated_at="a", heartbeat_at="a"
    )
    writer = ManifestWriter(tmp_path / "m.json", manifest)
    for i in range(5):
        call = ToolCallRecord(id=f"tc-{i}", step="s", milestone="exec", kind="shell", command="c", cwd=".")
        manifest.tool_calls.append(call)
        if i % 2 == 0:
            writer.mark_finished(call)
    assert json.loads(writer.render()) == manifest.model_dump(mode="json")


def test_writer_paces_progress_writes_but_forced_ones_always_land(tmp_path: Path) -> None:
    manifest = Manifest(
        run_id="r", task_id="t", run_dir="x", created_at="a", updated_at="a", heartbeat_at="a"
    )
    writer = ManifestWriter(tmp_path / "m.json", manifest)
    assert writer.save(force=True)
    manifest.status = "running"
    assert not writer.save()  # within the pacing interval
    assert load_manifest(tmp_path / "m.json").status == "queued"
    writer.flush()
    assert load_manifest(tmp_path / "m.json").status == "running"


def test_event_log_is_ordered_across_threads(tmp_path: Path) -> None:
    import threading

    log = EventLog(tmp_path / "events.jsonl", "r")

    def burst() -> None:
        for _ in range(200):
            log.emit(ev.MilestoneStarted(milestone="exec"))

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    events = read_events(tmp_path / "events.jsonl")
    assert [e["seq"] for e in events] == list(range(1, 801))


def test_task_metrics_rows_and_aggregates(tmp_path: Path) -> None:
    for run_id, status in (("r1", "succeeded"), ("r2", "failed")):
        rec = _recorder(tmp_path, run_id)
        rec.start()
        rec.finish(status, 0 if status == "succeeded" else 1)  # type: ignore[arg-type]
        rec.write_task_metrics()
    data = json.loads((tmp_path / ".runs/task-a/metrics.json").read_text())
    assert [r["run_id"] for r in data["runs"]] == ["r1", "r2"]
    assert data["aggregates"]["runs"] == 2
    assert data["aggregates"]["succeeded_runs"] == 1 and data["aggregates"]["failed_runs"] == 1
    # a re-written row replaces, never duplicates
    update_task_metrics(tmp_path / ".runs/task-a/metrics.json", load_manifest(rec.paths.manifest))
    assert len(json.loads((tmp_path / ".runs/task-a/metrics.json").read_text())["runs"]) == 2


def test_damaged_task_metrics_is_an_error_not_a_reset(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("{not json")
    rec = _recorder(tmp_path)
    with pytest.raises(RecordError, match="damaged"):
        update_task_metrics(path, rec.manifest)
    assert path.read_text() == "{not json"


KILLED_WRITER = """
import sys, time
from pathlib import Path
from codex_orchestrator.records.paths import RunPaths
from codex_orchestrator.run import RunRecorder
rec = RunRecorder(paths=RunPaths(Path(sys.argv[1]), "killed", "run-k"), workspace=Path(sys.argv[2]), request={})
rec.start()
i = 0
while True:
    i += 1
    call = rec.new_tool_call(step=f"s{i}", milestone="exec", kind="shell", command="x" * 500, cwd=".")
    call.status = "succeeded"
    rec.finish_tool_call(call)
    rec.touch(force=(i % 7 == 0))
    if i == 50:
        print("ready", flush=True)
"""


def test_a_killed_run_leaves_a_valid_manifest(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path / ".runs"), str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    manifest_path = tmp_path / ".runs/killed/cli/run-k/manifest.json"
    data = validate_manifest(manifest_path)
    assert data["status"] == "running" and len(data["tool_calls"]) >= 1
    # the event log never holds a torn line that read_events would trust
    events = read_events(manifest_path.parent / "events.jsonl")
    assert events[0]["type"] == "run.started"
