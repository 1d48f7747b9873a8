"""Fixtures for the exec-layer tests: the local PTY backend, tracked children and a session manager.

Every fixture that starts processes ends their whole process group at teardown and checks none survived.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from codex_orchestrator.exec.backend import ExecBackend, SpawnRequest
from codex_orchestrator.exec.local import LocalPtyBackend, LocalPtyProcess, session_members
from codex_orchestrator.exec.session import ExecSession, ExecSessionManager

TEARDOWN_GRACE_S = 1.0

SpawnLocal = Callable[..., LocalPtyProcess]


@pytest.fixture
def local_backend() -> LocalPtyBackend:
    return LocalPtyBackend()


@pytest.fixture
def spawn_local(local_backend: LocalPtyBackend) -> Iterator[SpawnLocal]:
    """``spawn_local(*argv, **SpawnRequest fields)``; every child's group is ended and checked at teardown."""
    children: list[LocalPtyProcess] = []

    def spawn(*argv: str, **fields: Any) -> LocalPtyProcess:
        child = local_backend.spawn(SpawnRequest(argv=argv, **fields))
        children.append(child)
        return child

    yield spawn
    for child in children:
        child.terminate_tree(TEARDOWN_GRACE_S)
        child.close()
    assert [pid for child in children for pid in session_members(child.pgid)] == []


class TrackingManager(ExecSessionManager):
    """A manager that remembers every session it opened, so teardown can check even pruned ones."""

    def __init__(self, **kwargs: Any) -> None:
        counter = itertools.count(1)
        super().__init__(id_factory=lambda: f"s{next(counter)}", **kwargs)
        self.opened: list[ExecSession] = []

    def open(self, backend: ExecBackend, request: SpawnRequest, **kwargs: Any) -> ExecSession:
        session = super().open(backend, request, **kwargs)
        self.opened.append(session)
        return session


@pytest.fixture
def make_manager() -> Iterator[Callable[..., TrackingManager]]:
    """``make_manager(**kwargs)``: managers with ids ``s1``, ``s2``, ...; closed and checked at teardown."""
    managers: list[TrackingManager] = []

    def make(**kwargs: Any) -> TrackingManager:
        manager = TrackingManager(**kwargs)
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.close_all(TEARDOWN_GRACE_S)
    pgids = [session.pid for manager in managers for session in manager.opened if session.pid is not None]
    assert [pid for pgid in pgids for pid in session_members(pgid)] == []


@pytest.fixture
def manager(make_manager: Callable[..., TrackingManager]) -> TrackingManager:
    """A manager with default settings."""
    return make_manager()
