"""Run records that several processes write: call files, run.json, the event log's seq under flock, the
manifest folded from them (byte-identical when rebuilt), task metrics, and what a killed writer leaves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from codex_orchestrator.call_recorder import CallRecorder
from codex_orchestrator.errors import RecordError, RequestError
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import EventLog, last_seq_in, read_events
from codex_orchestrator.records.manifest import ToolCallRecord, load_manifest
from codex_orchestrator.records.paths import artifact_key, find_run_dir, validate_task_id
from codex_orchestrator.records.snapshots import SnapshotPaths, write_snapshots
from codex_orchestrator.records.store import ManifestFolder, RunRef, RunStore
from codex_orchestrator.run import RunOwner
from codex_orchestrator.schemas import check_schemas
from tests.conftest import ROOT, SCHEMAS, validate_events, validate_manifest


def _ref(tmp_path: Path, run_id: str = "run-1", task: str = "task-a") -> RunRef:
    return RunRef(run_id=run_id, task_id=task, runs_dir=str(tmp_path / ".runs"), workspace=str(tmp_path))


def _owner(tmp_path: Path, run_id: str = "run-1", secrets: list[str] | None = None) -> RunOwner:
    return RunOwner.create(
        _ref(tmp_path, run_id), request={"env": {"API_TOKEN": "s3cr3t-value"}}, secrets=secrets or []
    )


def _call(owner: RunOwner, i: int, command: str = "c") -> ToolCallRecord:
    """Record one finished call exactly as the gate does (start event, call file, finish event, refold)."""
    rec = CallRecorder(owner.store, events=owner.events, tracer=owner.tracer, redact=owner.redact)
    call = ToolCallRecord(
        id=f"tc-{i:05d}", step=f"s{i}", milestone="exec", kind="shell", command=rec.redact(command), cwd="."
    )
    started = rec.events.emit(
        ev.ToolCallStarted(
            tool_call_id=call.id, step=call.step, kind="shell", command=call.command, cwd=".", backend="local"
        )
    )
    rec.begin_call(call, started.seq)
    call.status = "succeeded"
    rec.finish_call(call)
    return call


def test_schemas_are_current() -> None:
    assert check_schemas(SCHEMAS) == [], "schemas are stale: run `codex-orchestrator schema`"


@pytest.mark.parametrize("bad", ["../../etc", "..", "a/b", "", ".hidden", "A", "x" * 65, "a..b"])
def test_task_ids_cannot_escape(bad: str) -> None:
    with pytest.raises(RequestError, match="task"):
        validate_task_id(bad)


def test_artifact_keys_are_stable_and_legal() -> None:
    assert artifact_key("demo_add.x", "manifest") == "demo-add-x-manifest"


def test_owner_writes_a_valid_manifest_and_redacts(tmp_path: Path) -> None:
    owner = _owner(tmp_path, secrets=["s3cr3t-value"])
    owner.start()
    _call(owner, 1, "echo s3cr3t-value")
    owner.finish("succeeded", 0)
    data = validate_manifest(owner.paths.manifest)
    text = owner.paths.manifest.read_text()
    assert "s3cr3t-value" not in text
    assert data["request"]["env"]["API_TOKEN"] == "***"
    assert data["run_dir"] == ".runs/task-a/cli/run-1"
    assert data["status"] == "succeeded"
    assert data["tool_calls"][0]["command"] == "echo ***"
    events = validate_events(owner.paths.events)
    assert "s3cr3t-value" not in owner.paths.events.read_text()
    assert events[0]["type"] == "run.started" and events[-1]["type"] == "run.finished"
    assert find_run_dir(tmp_path / ".runs", "run-1") == owner.paths.run_dir
    # the request as given is kept for the run's other processes, readable by its owner only
    assert (owner.paths.run_dir / "request.json").stat().st_mode & 0o777 == 0o600


def test_existing_run_is_never_overwritten(tmp_path: Path) -> None:
    _owner(tmp_path).finish("succeeded", 0)
    before = (tmp_path / ".runs/task-a/cli/run-1/manifest.json").read_bytes()
    with pytest.raises(RequestError, match="already exists"):
        _owner(tmp_path)
    assert (tmp_path / ".runs/task-a/cli/run-1/manifest.json").read_bytes() == before


def test_a_fresh_fold_rebuilds_the_manifest_byte_for_byte(tmp_path: Path) -> None:
    owner = _owner(tmp_path)
    owner.start()
    for i in range(30):
        _call(owner, i)
    owner.finish("succeeded", 0)
    written = owner.paths.manifest.read_bytes()
    assert ManifestFolder(RunStore(owner.ref)).render() == written
    calls = json.loads(written)["tool_calls"]
    assert [c["id"] for c in calls] == [f"tc-{i:05d}" for i in range(30)]  # listed by their first event
    assert load_manifest(owner.paths.manifest).model_dump_json().encode() == written


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
        rec = _owner(tmp_path, run_id)
        rec.start()
        rec.finish(status, 0 if status == "succeeded" else 1)  # type: ignore[arg-type]
    data = json.loads((tmp_path / ".runs/task-a/metrics.json").read_text())
    assert [r["run_id"] for r in data["runs"]] == ["r1", "r2"]
    assert data["aggregates"]["runs"] == 2
    assert data["aggregates"]["succeeded_runs"] == 1 and data["aggregates"]["failed_runs"] == 1
    # written again, a run's row replaces itself, never duplicates
    write_snapshots(SnapshotPaths(tmp_path / ".runs", "task-a"))
    assert len(json.loads((tmp_path / ".runs/task-a/metrics.json").read_text())["runs"]) == 2


def test_damaged_snapshot_config_is_an_error_not_a_reset(tmp_path: Path) -> None:
    rec = _owner(tmp_path)
    rec.start()
    rec.finish("succeeded", 0)
    config = tmp_path / ".runs/task-a/metrics/config.json"
    config.write_text("{not json")
    before = (tmp_path / ".runs/task-a/metrics.json").read_bytes()
    with pytest.raises(RecordError, match="config"):
        write_snapshots(SnapshotPaths(tmp_path / ".runs", "task-a"))
    assert config.read_text() == "{not json"
    assert (tmp_path / ".runs/task-a/metrics.json").read_bytes() == before


KILLED_WRITER = """
import sys
from pathlib import Path
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.run import RunOwner
from tests.records.test_records import _call
ref = RunRef(run_id="run-k", task_id="killed", runs_dir=sys.argv[1], workspace=sys.argv[2])
owner = RunOwner.create(ref, request={})
owner.start()
i = 0
while True:
    i += 1
    _call(owner, i, "x" * 500)
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
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    manifest_path = tmp_path / ".runs/killed/cli/run-k/manifest.json"
    data = validate_manifest(manifest_path)
    assert data["status"] == "running" and len(data["tool_calls"]) >= 1
    # Nothing recorded is lost: a rebuild from the records finds every call file (each replaced atomically),
    # whatever the paced manifest had caught up with when the process died.
    store = RunStore(
        RunRef(run_id="run-k", task_id="killed", runs_dir=str(tmp_path / ".runs"), workspace=str(tmp_path))
    )
    on_disk = {p.stem for p in store.calls_dir.glob("*.json")}
    assert len(on_disk) >= 50
    rebuilt = json.loads(ManifestFolder(store).write() or b"{}")
    assert {c["id"] for c in rebuilt["tool_calls"]} == on_disk
    assert {c["id"] for c in data["tool_calls"]} <= on_disk
    # the event log never holds a torn line that read_events would trust
    events = read_events(manifest_path.parent / "events.jsonl")
    assert events[0]["type"] == "run.started"


PARALLEL_WRITER = """
import sys
from pathlib import Path
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.run import RunOwner
from tests.records.test_records import _call
ref = RunRef(run_id="run-p", task_id="par", runs_dir=sys.argv[1], workspace=sys.argv[2])
owner = RunOwner.open(ref)
base = int(sys.argv[3])
for i in range(base, base + 60):
    _call(owner, i)
owner.close()
"""


def test_several_processes_write_one_run(tmp_path: Path) -> None:
    ref = RunRef(run_id="run-p", task_id="par", runs_dir=str(tmp_path / ".runs"), workspace=str(tmp_path))
    owner = RunOwner.create(ref, request={})
    owner.start()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PARALLEL_WRITER, str(tmp_path / ".runs"), str(tmp_path), str(base)],
            cwd=ROOT,
        )
        for base in (0, 1000, 2000, 3000)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    owner.finish("succeeded", 0)
    events = validate_events(owner.paths.events)  # seq 1..N, no gap, no repeat, whoever wrote
    assert sum(1 for e in events if e["type"] == "tool_call.started") == 240
    data = validate_manifest(owner.paths.manifest)
    assert len(data["tool_calls"]) == 240 and {c["status"] for c in data["tool_calls"]} == {"succeeded"}
    assert len({c["host"] for c in data["tool_calls"]}) == 4
    assert ManifestFolder(RunStore(ref)).render() == owner.paths.manifest.read_bytes()


def test_last_seq_passes_over_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, "r")
    for _ in range(3):
        log.emit(ev.MilestoneStarted(milestone="exec"))
    log.close()
    with path.open("ab") as handle:
        handle.write(b'{"seq":4,"ts":"x","run_id":"r","type":"milesto')  # a writer killed mid-line
    fd = os.open(path, os.O_RDONLY)
    try:
        assert last_seq_in(fd, path.stat().st_size) == 3
    finally:
        os.close(fd)
    assert [e["seq"] for e in read_events(path)] == [1, 2, 3]
