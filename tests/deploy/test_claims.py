"""codex_orchestrator/call_claim.py: a call handed to several task workers runs once; a dead holder's claim
is taken over. Real processes, real files; no server."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from codex_orchestrator.call_claim import claim_path, follow, try_claim
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.records.store import RunRef, RunStore


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    ref = RunRef(
        run_id="claims-1", task_id="claims", runs_dir=str(tmp_path / ".runs"), workspace=str(tmp_path)
    )
    store = RunStore(ref)
    store.create_dirs()
    return store


def _record(status: str) -> ToolCallRecord:
    return ToolCallRecord(
        id="tc-a", step="a", milestone="exec", kind="shell", command="true", cwd=".", status=status
    )


def test_one_claimant_per_scope_even_in_one_process(store: RunStore) -> None:
    assert try_claim(store, "tc-a", "s1")
    assert not try_claim(store, "tc-a", "s1")  # a second task run of the call, same worker process
    assert try_claim(store, "tc-a", "s2")  # a resumed run is a new scope: it may run the call again


def test_a_follower_gets_the_claimers_final_record(store: RunStore) -> None:
    assert try_claim(store, "tc-a", "s1")
    store.write_call(_record("running"))
    finished = threading.Event()

    def finish(_seconds: float) -> None:  # the follower's sleep: the claimer finishes meanwhile
        store.write_call(_record("succeeded"))
        finished.set()

    record = follow(store, "tc-a", "s1", sleep=finish)
    assert finished.is_set() and record is not None and record.status == "succeeded"


def test_a_dead_holders_claim_is_taken_over(store: RunStore) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    path = claim_path(store, "tc-a", "s1")
    path.write_text(f"{socket.gethostname()}:{dead.stdout.strip()} token")
    store.write_call(_record("running"))
    assert follow(store, "tc-a", "s1") is None  # nobody will finish it: the caller should claim it
    assert try_claim(store, "tc-a", "s1")
    assert not try_claim(store, "tc-a", "s1")
