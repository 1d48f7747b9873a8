"""flows/interrupt.py: a signal ends the process whatever the interrupted thread was holding."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.conftest import python_child

# A bound only a hang reaches: the shutdown takes a few seconds at most.
WAIT_S = 60.0

HOLDS_THE_LOG_LOCK = r"""
import os, signal, sys, time
from pathlib import Path
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.run import RunOwner
from flows import interrupt

workspace = Path(sys.argv[1])
ref = RunRef(run_id="run-1", task_id="t", runs_dir=str(workspace / ".runs"), workspace=str(workspace))
owner = RunOwner.create(ref, request={})
owner.start()
interrupt.install()
with owner.events._lock:  # the signal comes in the middle of an event being written
    print("holding", flush=True)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(600)
"""


def test_a_signal_that_comes_while_the_event_log_is_locked_still_ends_the_process(tmp_path: Path) -> None:
    """The handler runs in the interrupted thread: marking the run interrupted needs the log's lock that thread
    holds. Waiting for it there hung the process forever (the signals are ignored once the shutdown began)."""
    code, out, err = python_child(HOLDS_THE_LOG_LOCK, str(tmp_path), timeout_s=WAIT_S)
    assert out.strip() == "holding"
    assert code == 128 + signal.SIGINT, err
    assert "records were not marked interrupted" in err
    assert "Traceback" not in err
