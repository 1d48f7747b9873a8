"""LocalPtyBackend and LocalPtyProcess against real children in real PTYs."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable

import pytest

from codex_orchestrator.exec.backend import PINNED_ENV, ChildProcess, ExecBackend, SpawnRequest
from codex_orchestrator.exec.errors import ExecError, SpawnError
from codex_orchestrator.exec.local import (
    READ_CHUNK_BYTES,
    LocalPtyBackend,
    LocalPtyProcess,
    session_members,
)

SpawnLocal = Callable[..., LocalPtyProcess]

# Generous bounds so a loaded machine never hangs a test; nothing asserts on how long anything took.
WAIT_S = 10.0


def read_until(child: LocalPtyProcess, needle: bytes | None = None, timeout_s: float = WAIT_S) -> bytes:
    """Output until ``needle`` appears (or EOF when ``needle`` is None); fails the test on timeout."""
    deadline = time.monotonic() + timeout_s
    output = b""
    while needle is None or needle not in output:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out waiting for {needle!r}; got {output!r}"
        chunk = child.read(remaining)
        if chunk == b"":
            assert needle is None, f"EOF before {needle!r}; got {output!r}"
            break
        output += chunk or b""
    return output


def wait_for_members(pgid: int, count: int) -> list[int]:
    deadline = time.monotonic() + WAIT_S
    while len(members := list(session_members(pgid))) < count:
        assert time.monotonic() < deadline, f"group {pgid} has {members}, expected {count} members"
        time.sleep(0.01)
    return members


def exited(pids: list[int]) -> Callable[[], list[int]]:
    """Watch ``pids`` from now on; the returned call blocks until each has exited and returns those that had
    not after ``WAIT_S``. A pidfd taken before the signal cannot be confused with a reused pid, and it
    becomes readable exactly when the process dies: no polling of /proc, whatever the machine's load.
    """
    fds: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            fds[os.pidfd_open(pid)] = pid

    def wait() -> list[int]:
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + WAIT_S
        pending = dict(fds)
        try:
            while pending and (remaining := deadline - time.monotonic()) > 0:
                for fd, _ in poller.poll(remaining * 1000):
                    poller.unregister(fd)
                    del pending[fd]
        finally:
            for fd in fds:
                os.close(fd)
        return sorted(pending.values())

    return wait


def python_child(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def test_backend_and_process_implement_the_protocol(spawn_local: SpawnLocal) -> None:
    backend = LocalPtyBackend()
    assert backend.name == "local"
    assert isinstance(backend, ExecBackend)
    child = spawn_local("true")
    assert isinstance(child, ChildProcess)
    assert child.wait(WAIT_S) == 0


def test_child_sees_a_tty_and_leads_its_own_session_and_group(spawn_local: SpawnLocal) -> None:
    child = spawn_local(
        *python_child(
            "import os\n"
            "print('tty', all(os.isatty(fd) for fd in (0, 1, 2)))\n"
            "print('leader', os.getsid(0) == os.getpid() == os.getpgrp())\n"
            # The PTY is the controlling terminal and we are its foreground group.
            "print('ctty', os.tcgetpgrp(0) == os.getpgrp())\n"
            "os.close(os.open('/dev/tty', os.O_RDWR))\n"
            "print('pid', os.getpid())\n"
        )
    )
    output = read_until(child)
    assert b"tty True" in output
    assert b"leader True" in output
    assert b"ctty True" in output
    assert f"pid {child.pid}".encode() in output
    assert child.pgid == child.pid
    assert child.wait(WAIT_S) == 0


def test_environment_layers_inherited_then_pinned_then_request(
    spawn_local: SpawnLocal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CO_TEST_INHERITED", "from-parent")
    monkeypatch.setenv("TERM", "xterm-256color")  # pinned wins over inherited
    monkeypatch.setenv("PAGER", "less")  # the request wins over pinned
    child = spawn_local(
        "sh",
        "-c",
        'echo "[$CO_TEST_INHERITED|$TERM|$PAGER|$NO_COLOR|$EXTRA]"',
        env={"PAGER": "more", "EXTRA": "x"},
    )
    output = read_until(child)
    assert f"[from-parent|{PINNED_ENV['TERM']}|more|{PINNED_ENV['NO_COLOR']}|x]".encode() in output


def test_cwd_is_honoured(spawn_local: SpawnLocal, tmp_path: os.PathLike[str]) -> None:
    child = spawn_local("pwd", cwd=str(tmp_path))
    assert os.fsencode(tmp_path) + b"\r\n" in read_until(child)


def test_stdin_round_trip(spawn_local: SpawnLocal) -> None:
    child = spawn_local("sh", "-c", 'read line; echo "got:$line"')
    child.write(b"ping\n")
    assert b"got:ping" in read_until(child, b"got:ping")
    assert child.wait(WAIT_S) == 0


def test_initial_size_and_resize_with_sigwinch(spawn_local: SpawnLocal) -> None:
    child = spawn_local(
        "sh",
        "-c",
        "stty size; trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done",
        rows=30,
        cols=100,
    )
    assert b"30 100" in read_until(child, b"ready")
    child.resize(50, 132)
    assert b"50 132" in read_until(child, b"50 132")
    assert child.wait(WAIT_S) == 0


@pytest.mark.parametrize(
    ("script", "code"),
    [("exit 0", 0), ("exit 7", 7), ("kill -TERM $$", 128 + 15), ("kill -KILL $$", 128 + 9)],
)
def test_exit_codes(spawn_local: SpawnLocal, script: str, code: int) -> None:
    child = spawn_local("sh", "-c", script)
    read_until(child)
    assert child.wait(WAIT_S) == code
    assert child.poll() == code


def test_signal_reaches_the_group(spawn_local: SpawnLocal) -> None:
    child = spawn_local("sh", "-c", "sleep 300 & echo started; wait")
    read_until(child, b"started")
    members = wait_for_members(child.pgid, 2)
    wait_exited = exited(members)
    child.signal(signal.SIGKILL)
    assert child.wait(WAIT_S) == 128 + signal.SIGKILL
    # The shell's exit says nothing about its background job: the kernel queues SIGKILL for every member at
    # once, but each dies only when it next runs, and on a busy machine `sleep` can still be waiting for a CPU
    # when the shell has been reaped. Wait for each member's own death, not for the shell's.
    assert wait_exited() == []
    for pid in members:
        assert pid not in session_members(child.pgid)


def test_terminate_tree_ends_grandchildren(spawn_local: SpawnLocal) -> None:
    child = spawn_local("sh", "-c", "sleep 300 & sleep 300 & wait")
    members = wait_for_members(child.pgid, 3)
    assert child.pid in members
    code = child.terminate_tree(grace_s=WAIT_S)
    assert code is not None and code > 128
    assert list(session_members(child.pgid)) == []


def test_terminate_tree_ends_the_jobs_of_an_interactive_shell(spawn_local: SpawnLocal) -> None:
    # With job control each job gets a process group of its own; they are still in the child's session.
    child = spawn_local("sh", "-i")
    child.write(b"sleep 300 & sleep 301 &\necho st''arted\n")  # the quotes keep the echoed line from matching
    read_until(child, b"started")
    members = session_members(child.pgid)
    assert len(members) == 3
    assert len(set(members.values())) == 3
    code = child.terminate_tree(grace_s=WAIT_S)
    assert code is not None and code > 128
    assert session_members(child.pgid) == {}


def test_terminate_tree_ends_grandchildren_left_behind_by_an_exited_child(spawn_local: SpawnLocal) -> None:
    # The kernel hangs up the foreground group when the session leader exits; the orphan must ignore that.
    child = spawn_local("sh", "-c", "trap '' HUP; sleep 300 & echo $!")
    output = read_until(child, b"\n")
    assert child.wait(WAIT_S) == 0
    orphan = int(output.split()[0])
    assert orphan in session_members(child.pgid)
    assert child.terminate_tree(grace_s=WAIT_S) == 0
    assert list(session_members(child.pgid)) == []


def test_terminate_tree_kills_what_ignores_sigterm_and_sighup(spawn_local: SpawnLocal) -> None:
    child = spawn_local("sh", "-c", "trap '' TERM HUP; echo ready; while :; do sleep 0.05; done")
    read_until(child, b"ready")
    assert child.terminate_tree(grace_s=0.2) == 128 + signal.SIGKILL
    assert list(session_members(child.pgid)) == []


def test_terminate_tree_after_exit_just_returns_the_code(spawn_local: SpawnLocal) -> None:
    child = spawn_local("sh", "-c", "exit 3")
    assert child.wait(WAIT_S) == 3
    assert child.terminate_tree() == 3


def test_read_returns_none_while_quiet_and_empty_bytes_at_eof(spawn_local: SpawnLocal) -> None:
    child = spawn_local("sh", "-c", "read x; echo done")
    assert child.read(0.05) is None
    child.write(b"\n")
    read_until(child)
    assert child.read(0.05) == b""  # EOF stays EOF
    assert child.wait(WAIT_S) == 0


def test_reads_come_in_bounded_chunks(spawn_local: SpawnLocal) -> None:
    child = spawn_local("head", "-c", "300000", "/dev/zero")
    total = 0
    deadline = time.monotonic() + WAIT_S
    while (chunk := child.read(WAIT_S)) != b"":
        assert chunk is not None and time.monotonic() < deadline
        assert len(chunk) <= READ_CHUNK_BYTES
        total += len(chunk)
    assert total == 300_000


def test_close_wakes_a_blocked_reader_and_reaps_a_running_child(spawn_local: SpawnLocal) -> None:
    child = spawn_local("sleep", "300")
    results: list[bytes | None] = []
    reader = threading.Thread(target=lambda: results.append(child.read(WAIT_S * 3)))
    reader.start()
    time.sleep(0.05)  # let the reader block; the test is just as valid if it has not yet
    child.close()
    reader.join(WAIT_S)
    assert not reader.is_alive()
    assert results == [b""]
    assert child.poll() is not None
    assert list(session_members(child.pgid)) == []
    child.close()  # idempotent
    assert child.read(0.01) == b""
    with pytest.raises(ExecError, match="closed"):
        child.write(b"x")
    with pytest.raises(ExecError, match="closed"):
        child.resize(10, 10)


def test_missing_program_raises_spawn_error(local_backend: LocalPtyBackend) -> None:
    with pytest.raises(SpawnError) as caught:
        local_backend.spawn(SpawnRequest(argv=("definitely-not-a-program-xyz", "arg")))
    assert caught.value.argv == ["definitely-not-a-program-xyz", "arg"]
    assert "No such file" in caught.value.cause
    assert isinstance(caught.value.__cause__, OSError)


def test_bad_cwd_raises_spawn_error(local_backend: LocalPtyBackend, tmp_path: os.PathLike[str]) -> None:
    missing = os.path.join(tmp_path, "missing")
    with pytest.raises(SpawnError, match="working directory") as caught:
        local_backend.spawn(SpawnRequest(argv=("true",), cwd=missing))
    assert missing in caught.value.cause


def test_not_executable_raises_spawn_error(
    local_backend: LocalPtyBackend, tmp_path: os.PathLike[str]
) -> None:
    script = os.path.join(tmp_path, "script")
    with open(script, "w") as handle:
        handle.write("#!/bin/sh\n")
    with pytest.raises(SpawnError, match="Permission denied"):
        local_backend.spawn(SpawnRequest(argv=(script,)))


def test_empty_argv_raises_spawn_error(local_backend: LocalPtyBackend) -> None:
    with pytest.raises(SpawnError, match="empty"):
        local_backend.spawn(SpawnRequest(argv=()))


def test_failed_spawns_leak_no_descriptors(local_backend: LocalPtyBackend) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(SpawnError):
            local_backend.spawn(SpawnRequest(argv=("definitely-not-a-program-xyz",)))
    assert len(os.listdir("/proc/self/fd")) == before
