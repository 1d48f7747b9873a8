"""The signal handler's talk with Prefect (flows/interrupt.py): a server that refuses the connection is gone, and
the handler neither retries it nor waits for logs it can no longer deliver."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_orchestrator.records.store import RunRef
from codex_orchestrator.run import RunOwner
from flows import interrupt


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
