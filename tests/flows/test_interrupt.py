"""flows/interrupt.py: a signal ends the process whatever the interrupted thread was holding, and the handler's
talk with Prefect: a server that refuses the connection is gone, and the handler neither retries it nor waits for
logs it can no longer deliver."""

from __future__ import annotations

import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_orchestrator.records.store import RunRef
from codex_orchestrator.run import RunOwner
from flows import interrupt
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


@pytest.fixture
def refused_api_url() -> Iterator[str]:
    """An API URL on a loopback port that is bound but not listening: every connection is refused at once."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))  # bound, never listened on: nobody else gets the port meanwhile
        yield f"http://127.0.0.1:{held.getsockname()[1]}/api/"


def test_a_server_that_refuses_is_reported_gone_and_not_asked_again(
    workspace: Path, refused_api_url: str
) -> None:
    ref = RunRef(
        run_id=f"run-{uuid.uuid4().hex[:8]}",
        task_id="interrupt-test",
        runs_dir=str(workspace / ".runs"),
        workspace=str(workspace),
    )
    owner = RunOwner.create(ref, request={}, with_milestones=False)
    owner.start()
    owner.set_prefect(api_url=refused_api_url, parent_flow_run_id=str(uuid.uuid4()))
    try:
        assert interrupt._refused(refused_api_url)
        # What the Ctrl-C handler tells the user about: this server, once, however many flow runs it held.
        assert interrupt._tell_prefect([owner], "SIGINT") == [refused_api_url]
    finally:
        owner.finish("interrupted", 130)


def test_a_listening_server_is_not_taken_for_gone() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        assert not interrupt._refused(f"http://127.0.0.1:{listening.getsockname()[1]}/api")
