"""What a tool call's record writes guarantee at each point (call_recorder.py's durability rule): a finished call
is on disk when its writer is killed right after, a running call's status change is written at once, progress
folds of the manifest are caught up off the hot path, and one directory sync serves concurrent finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from codex_orchestrator.call_recorder import CallRecorder
from codex_orchestrator.records import atomic
from codex_orchestrator.records import events as ev
from codex_orchestrator.records import store as store_module
from codex_orchestrator.records.atomic import DirSync
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.records.store import ManifestFolder, RunRef, RunStore
from codex_orchestrator.run import RunOwner
from tests.conftest import ROOT, validate_manifest


def _ref(tmp_path: Path, run_id: str = "run-d") -> RunRef:
    return RunRef(run_id=run_id, task_id="dur", runs_dir=str(tmp_path / ".runs"), workspace=str(tmp_path))


def _recorder(owner: RunOwner) -> CallRecorder:
    return CallRecorder(owner.store, events=owner.events, tracer=owner.tracer, redact=owner.redact)


def _begin(rec: CallRecorder, i: int) -> ToolCallRecord:
    call = ToolCallRecord(
        id=f"tc-{i:03d}", step=f"s{i}", milestone="exec", kind="shell", command="c", cwd="."
    )
    started = rec.events.emit(
        ev.ToolCallStarted(
            tool_call_id=call.id, step=call.step, kind="shell", command="c", cwd=".", backend="local"
        )
    )
    rec.begin_call(call, started.seq)
    return call


FINISH_THEN_WAIT = """
import sys
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.run import RunOwner
from tests.records.test_record_durability import _begin, _recorder
ref = RunRef(run_id="run-k", task_id="dur", runs_dir=sys.argv[1], workspace=sys.argv[2])
owner = RunOwner.create(ref, request={})
owner.start()
rec = _recorder(owner)
for i in range(3):
    call = _begin(rec, i)
    call.status = "succeeded"
    call.exit_code = 0
    rec.finish_call(call)
last = _begin(rec, 3)
last.status = "running"
rec.touch(last)
print("finished", flush=True)
sys.stdin.read()  # killed here, the manifest's progress folds still paced
"""


def test_a_call_that_finished_is_on_disk_after_its_writer_is_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", FINISH_THEN_WAIT, str(tmp_path / ".runs"), str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "finished"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    store = RunStore(
        RunRef(run_id="run-k", task_id="dur", runs_dir=str(tmp_path / ".runs"), workspace=str(tmp_path))
    )
    calls = {c.id: c for c in (store.read_call(f"tc-{i:03d}") for i in range(4)) if c is not None}
    assert [calls[f"tc-{i:03d}"].status for i in range(3)] == ["succeeded"] * 3
    assert calls["tc-003"].status == "running"  # its status change was written at once, not paced
    assert not [p for p in store.calls_dir.iterdir() if p.name.startswith(".")]  # no temp file left behind
    rebuilt = json.loads(ManifestFolder(store).write() or b"{}")  # `manifest --rebuild`
    assert {c["id"]: c["status"] for c in rebuilt["tool_calls"]} == {
        "tc-000": "succeeded",
        "tc-001": "succeeded",
        "tc-002": "succeeded",
        "tc-003": "running",
    }


def test_progress_within_the_interval_is_not_rewritten_but_a_status_change_is(tmp_path: Path) -> None:
    owner = RunOwner.create(_ref(tmp_path), request={})
    owner.start()
    rec = _recorder(owner)
    call = _begin(rec, 0)
    path = owner.store.call_file(call.id)
    begun = path.stat().st_ino
    rec.touch(call)  # nothing changed since the begin write
    assert path.stat().st_ino == begun
    call.status = "running"
    rec.touch(call)
    assert path.stat().st_ino != begun
    assert json.loads(path.read_bytes())["status"] == "running"
    owner.finish("succeeded", 0)


def test_a_skipped_progress_fold_is_caught_up_off_the_hot_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MIN_REWRITE_INTERVAL_S", 3600.0)  # every progress fold is "too soon"
    owner = RunOwner.create(_ref(tmp_path), request={})  # not started: no heartbeat fold in between
    rec = _recorder(owner)
    folder = rec.folder
    _begin(rec, 0)  # the fold that first shows a call is never skipped
    assert [c["id"] for c in validate_manifest(owner.paths.manifest)["tool_calls"]] == ["tc-000"]
    writes = folder.writes
    _begin(rec, 1)
    assert folder.writes == writes and folder.deferred  # the call did not pay for a fold...
    timer = folder._catch_up
    assert timer is not None and timer.is_alive()  # ...a timer will do it when it falls due
    folder.cancel_catch_up()
    folder._next_allowed = 0.0  # it falls due now
    folder._catch_up_now()
    assert not folder.deferred and folder.writes == writes + 1
    assert [c["id"] for c in validate_manifest(owner.paths.manifest)["tool_calls"]] == ["tc-000", "tc-001"]
    owner.finish("succeeded", 0)
    assert ManifestFolder(RunStore(_ref(tmp_path))).render() == owner.paths.manifest.read_bytes()


def test_one_directory_sync_serves_the_finishes_that_queued_behind_it(tmp_path: Path) -> None:
    """Four threads finish at once: the first sync runs alone; the three that arrive while it runs share the
    next one (the fake sync holds the first until they have all asked)."""
    syncs: list[int] = []
    entered, release = threading.Event(), threading.Event()
    committer: DirSync

    def slow_sync(path: Path) -> None:
        syncs.append(committer.requested)
        if len(syncs) == 1:
            entered.set()
            release.wait(timeout=60)
        atomic.fsync_dir(path)

    committer = DirSync(tmp_path, sync=slow_sync)
    first = threading.Thread(target=committer.sync)
    first.start()
    assert entered.wait(timeout=60)  # the first caller is inside its sync
    others = [threading.Thread(target=committer.sync) for _ in range(3)]
    for thread in others:
        thread.start()
    with committer._cond:
        while committer.requested < 4:
            committer._cond.wait(timeout=0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(timeout=60)
    assert committer.syncs == 2 and committer.synced == 4
    assert syncs == [1, 4]


def test_a_failed_directory_sync_is_raised_and_the_next_caller_syncs_again(tmp_path: Path) -> None:
    calls: list[Path] = []

    def flaky(path: Path) -> None:
        calls.append(path)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")

    committer = DirSync(tmp_path, sync=flaky)
    with pytest.raises(OSError):
        committer.sync()
    assert committer.synced == 0
    committer.sync()
    assert committer.synced == 2 and len(calls) == 2


def test_a_call_never_waits_for_a_fold_in_progress(tmp_path: Path) -> None:
    owner = RunOwner.create(_ref(tmp_path), request={})
    rec = _recorder(owner)
    _begin(rec, 0)
    folder = rec.folder
    writes = folder.writes
    with folder._lock:  # as while the catch-up timer folds
        _begin(rec, 1)  # returns at once: the lock is not waited for
        assert folder.writes == writes and folder._paced_waiting
    folder._after_release()  # what the holder does when it lets go
    assert folder.deferred and folder._catch_up is not None
    folder.cancel_catch_up()
    owner.finish("succeeded", 0)
    assert [c["id"] for c in validate_manifest(owner.paths.manifest)["tool_calls"]] == ["tc-000", "tc-001"]
