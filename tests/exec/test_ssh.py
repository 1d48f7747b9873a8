"""SSH PTY backend against a real OpenSSH sshd on loopback (see ``tests/exec/sshd.py``)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_orchestrator.exec.backend import (
    DEFAULT_COLS,
    DEFAULT_ROWS,
    ChildProcess,
    ExecBackend,
    SpawnRequest,
)
from codex_orchestrator.exec.errors import ConnectionLost, HostKeyError, SpawnError, SshConnectError
from codex_orchestrator.exec.ssh import (
    SshBackend,
    SshConnectionPool,
    SshProcess,
    SshTarget,
    build_remote_command,
    parse_ssh_destination,
)
from tests.exec.sshd import SshdServer, generate_key, known_hosts_line, running_sshd

pytestmark = pytest.mark.ssh

# Generous bounds: they only stop a broken test from hanging, they are not performance assertions.
WAIT_S = 20.0
READ_SLICE_S = 0.2
# Unique per test run, so pgrep never matches another run's processes. Used as a sleep duration too
# (``sleep 301.<pid>``), which puts the tag on the command line of every process of a test.
RUN_ID = os.getpid()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as started:
        yield started


@pytest.fixture
def pool() -> Iterator[SshConnectionPool]:
    connections = SshConnectionPool()
    yield connections
    connections.close_all()


@pytest.fixture
def backend(server: SshdServer, pool: SshConnectionPool) -> SshBackend:
    return SshBackend(server.target(), pool)


@pytest.fixture
def spawned() -> Iterator[list[SshProcess]]:
    """Processes a test started; closed at teardown so no remote process outlives the test."""
    processes: list[SshProcess] = []
    yield processes
    for process in processes:
        process.close()


def spawn(
    backend: SshBackend,
    spawned: list[SshProcess],
    *argv: str,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    rows: int = DEFAULT_ROWS,
    cols: int = DEFAULT_COLS,
) -> SshProcess:
    process = backend.spawn(SpawnRequest(argv=argv, cwd=cwd, env=env or {}, rows=rows, cols=cols))
    spawned.append(process)
    return process


def read_until(process: ChildProcess, needle: bytes) -> bytes:
    output = b""
    deadline = time.monotonic() + WAIT_S
    while needle not in output:
        assert time.monotonic() < deadline, f"{needle!r} not seen within {WAIT_S}s; got {output!r}"
        chunk = process.read(READ_SLICE_S)
        assert chunk != b"", f"output ended before {needle!r}; got {output!r}"
        output += chunk or b""
    return output


def read_to_end(process: ChildProcess) -> bytes:
    output = b""
    deadline = time.monotonic() + WAIT_S
    while (chunk := process.read(READ_SLICE_S)) != b"":
        assert time.monotonic() < deadline, f"output did not end within {WAIT_S}s; got {output!r}"
        output += chunk or b""
    return output


def remote_pids(pattern: str) -> list[str]:
    """Pids whose command line contains ``pattern`` (the sshd is local, so remote processes are ours)."""
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    return found.stdout.split()


def wait_until_gone(pattern: str) -> list[str]:
    deadline = time.monotonic() + WAIT_S
    while (pids := remote_pids(pattern)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


# --- running commands -------------------------------------------------------------------------------------


def test_backend_implements_the_protocol(backend: SshBackend, server: SshdServer) -> None:
    assert isinstance(backend, ExecBackend)
    assert backend.name == f"ssh://{server.user}@127.0.0.1:{server.port}"


def test_exit_codes_and_output_in_order(backend: SshBackend, spawned: list[SshProcess]) -> None:
    ok = spawn(backend, spawned, "true")
    failing = spawn(backend, spawned, "sh", "-c", "for i in 1 2 3; do echo line$i; done; exit 3")

    output = read_to_end(failing)

    assert isinstance(failing, ChildProcess)
    assert output == b"line1\r\nline2\r\nline3\r\n"
    assert failing.wait(WAIT_S) == 3
    assert ok.wait(WAIT_S) == 0
    assert failing.pid is not None


def test_output_streams_before_exit(backend: SshBackend, spawned: list[SshProcess]) -> None:
    process = spawn(backend, spawned, "sh", "-c", "echo first; read x; echo second")

    assert b"first" in read_until(process, b"first")
    assert process.poll() is None

    process.write(b"go\n")
    assert b"second" in read_until(process, b"second")
    assert process.wait(WAIT_S) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_signal_death_exits_128_plus_n(
    backend: SshBackend, spawned: list[SshProcess], signum: signal.Signals
) -> None:
    process = spawn(backend, spawned, "sleep", "60")

    process.signal(signum)

    assert process.wait(WAIT_S) == 128 + signum


def test_self_signal_is_reported(backend: SshBackend, spawned: list[SshProcess]) -> None:
    process = spawn(backend, spawned, "sh", "-c", "kill -INT $$")

    assert process.wait(WAIT_S) == 128 + signal.SIGINT


def test_remote_child_sees_a_tty(backend: SshBackend, spawned: list[SshProcess]) -> None:
    process = spawn(backend, spawned, "sh", "-c", "test -t 0 && test -t 1 && tty")

    assert b"/dev/pts/" in read_to_end(process)
    assert process.wait(WAIT_S) == 0


def test_stdin_round_trip(backend: SshBackend, spawned: list[SshProcess]) -> None:
    process = spawn(backend, spawned, "sh", "-c", 'read line; echo "got:$line"')

    process.write(b"hello\n")

    assert b"got:hello" in read_until(process, b"got:hello")
    assert process.wait(WAIT_S) == 0


def test_resize_reaches_the_remote_terminal(backend: SshBackend, spawned: list[SshProcess]) -> None:
    process = spawn(backend, spawned, "sh", "-c", "stty size; read x; stty size", rows=24, cols=80)
    read_until(process, b"24 80")

    process.resize(40, 120)
    process.write(b"\n")

    assert b"40 120" in read_until(process, b"40 120")


def test_env_and_cwd_are_honoured(backend: SshBackend, spawned: list[SshProcess], tmp_path: Path) -> None:
    value = "two words 'quoted' $HOME"
    process = spawn(
        backend,
        spawned,
        "sh",
        "-c",
        'printf "%s|%s|%s\\n" "$CODEX_TEST_VALUE" "$(pwd)" "$TERM"',
        cwd=str(tmp_path),
        env={"CODEX_TEST_VALUE": value},
    )

    assert read_to_end(process) == f"{value}|{tmp_path}|dumb\r\n".encode()


def test_missing_cwd_is_a_spawn_error(backend: SshBackend, tmp_path: Path) -> None:
    with pytest.raises(SpawnError, match="remote start failed"):
        backend.spawn(SpawnRequest(argv=("true",), cwd=str(tmp_path / "absent")))


def test_invalid_env_name_is_a_spawn_error() -> None:
    with pytest.raises(SpawnError, match="invalid environment entry"):
        build_remote_command(SpawnRequest(argv=("true",), env={"A=B": "x"}))


# --- process-tree hygiene ---------------------------------------------------------------------------------


def test_terminate_tree_leaves_no_remote_process(backend: SshBackend, spawned: list[SshProcess]) -> None:
    tag = f"301.{RUN_ID}"
    # SIGTERM is ignored (so SIGKILL must follow); one background child stays in the command's group,
    # another is moved into a group of its own by a job-control shell (``kill -- -PGID`` cannot reach it).
    script = f"trap '' TERM; sleep {tag} & bash -c 'set -m; sleep {tag} & wait'"
    process = spawn(backend, spawned, "sh", "-c", script)
    read_until_running(tag, count=4)

    code = process.terminate_tree(grace_s=0.5)

    assert code == 128 + signal.SIGKILL
    assert wait_until_gone(tag) == []
    assert read_to_end(process) is not None


def test_close_ends_a_running_process(backend: SshBackend) -> None:
    tag = f"302.{RUN_ID}"
    process = backend.spawn(SpawnRequest(argv=("sh", "-c", f"sleep {tag} & sleep {tag}")))
    read_until_running(tag, count=3)

    process.close()
    process.close()  # idempotent

    assert wait_until_gone(tag) == []
    assert process.read(READ_SLICE_S) == b""


def read_until_running(tag: str, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while len(remote_pids(tag)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} processes tagged {tag} started"
        time.sleep(0.05)


# --- connections and host keys ----------------------------------------------------------------------------


def test_spawns_share_one_transport(
    backend: SshBackend, pool: SshConnectionPool, spawned: list[SshProcess]
) -> None:
    first = spawn(backend, spawned, "true")
    second = spawn(backend, spawned, "true")

    assert first.wait(WAIT_S) == 0
    assert second.wait(WAIT_S) == 0
    assert backend.connect() is pool.connect(backend.target)
    assert backend.host_fingerprint is not None


def test_unknown_host_key_is_refused(server: SshdServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    backend = SshBackend(server.target(known_hosts=str(empty)))

    with pytest.raises(HostKeyError) as raised:
        backend.spawn(SpawnRequest(argv=("true",)))

    assert raised.value.fingerprint == server.host_fingerprint
    assert raised.value.changed is False
    assert raised.value.retryable is False
    assert "trust-on-first-use" in str(raised.value)
    assert str(empty) in str(raised.value)
    assert empty.read_text() == ""
    backend.close()


def test_trust_on_first_use_records_the_host_key(server: SshdServer, tmp_path: Path) -> None:
    known_hosts = tmp_path / "new-dir" / "known_hosts"
    backend = SshBackend(server.target(known_hosts=str(known_hosts), trust_on_first_use=True))

    connection = backend.connect()

    assert connection.newly_trusted is True
    assert backend.host_fingerprint == server.host_fingerprint
    recorded = known_hosts_line(server.host, server.port, server.host_key.with_suffix(".pub"))
    assert known_hosts.read_text() == recorded
    backend.close()

    # The recorded key now verifies the host without TOFU.
    strict = SshBackend(server.target(known_hosts=str(known_hosts)))
    assert strict.connect().newly_trusted is False
    strict.close()


def test_changed_host_key_is_refused_even_with_tofu(server: SshdServer, tmp_path: Path) -> None:
    impostor = generate_key(tmp_path / "other_host_key").with_suffix(".pub")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known_hosts_line(server.host, server.port, impostor))
    backend = SshBackend(server.target(known_hosts=str(known_hosts), trust_on_first_use=True))

    with pytest.raises(HostKeyError) as raised:
        backend.connect()

    assert raised.value.changed is True
    assert raised.value.fingerprint == server.host_fingerprint
    assert "CHANGED" in str(raised.value)
    assert known_hosts.read_text() == known_hosts_line(server.host, server.port, impostor)
    backend.close()


def test_wrong_key_is_a_permanent_connect_error(server: SshdServer, tmp_path: Path) -> None:
    wrong = generate_key(tmp_path / "wrong_key")
    backend = SshBackend(server.target(key_file=str(wrong)))

    with pytest.raises(SshConnectError) as raised:
        backend.spawn(SpawnRequest(argv=("true",)))

    assert raised.value.retryable is False
    assert "authentication failed" in str(raised.value)
    backend.close()


def test_refused_port_is_a_retryable_connect_error(server: SshdServer) -> None:
    backend = SshBackend(server.target(port=1))

    with pytest.raises(SshConnectError) as raised:
        backend.connect()

    assert raised.value.retryable is True
    backend.close()


def test_key_data_authenticates_and_stays_out_of_repr(server: SshdServer, spawned: list[SshProcess]) -> None:
    key_text = server.client_key.read_text()
    target = server.target(key_file=None, key_data=key_text)
    backend = SshBackend(target)

    process = spawn(backend, spawned, "true")

    assert process.wait(WAIT_S) == 0
    assert key_text.strip().splitlines()[1] not in repr(target)
    process.close()
    backend.close()


def test_garbage_key_data_is_a_permanent_connect_error(server: SshdServer) -> None:
    backend = SshBackend(server.target(key_file=None, key_data="not a key"))

    with pytest.raises(SshConnectError) as raised:
        backend.connect()

    assert raised.value.retryable is False
    assert "not a key" not in str(raised.value)
    backend.close()


def test_sshd_killed_mid_stream_is_connection_lost(
    server: SshdServer, backend: SshBackend, spawned: list[SshProcess]
) -> None:
    tag = f"codex-ssh-test-{RUN_ID}-killed"
    process = spawn(backend, spawned, "sh", "-c", f"while true; do echo x; sleep 0.05; done; : {tag}")
    read_until(process, b"x")
    try:
        server.kill()

        with pytest.raises(ConnectionLost) as raised:
            read_to_end(process)
        assert raised.value.retryable is True
        with pytest.raises(ConnectionLost):
            process.poll()
    finally:
        subprocess.run(["pkill", "-KILL", "-f", tag], check=False)
        server.restart()

    # The dead transport is replaced on the next spawn.
    again = spawn(backend, spawned, "true")
    assert again.wait(WAIT_S) == 0


# --- destinations (pure) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        ("host", SshTarget(host="host")),
        ("alice@host", SshTarget(host="host", user="alice")),
        ("alice@host:2222", SshTarget(host="host", port=2222, user="alice")),
        ("ssh://bob@10.0.0.1:22", SshTarget(host="10.0.0.1", user="bob")),
        ("[::1]:2200", SshTarget(host="::1", port=2200)),
        ("::1", SshTarget(host="::1")),
    ],
)
def test_parse_ssh_destination(destination: str, expected: SshTarget) -> None:
    assert parse_ssh_destination(destination) == expected


@pytest.mark.parametrize(
    ("destination", "complaint"),
    [
        ("", "host"),
        ("alice@", "host"),
        ("@host", "empty user"),
        ("host:", "port"),
        ("host:ssh", "port"),
        ("host:0", "port"),
        ("host:70000", "port"),
        ("[::1", "malformed"),
        ("a host", "host"),
    ],
)
def test_parse_ssh_destination_rejects_bad_input(destination: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_ssh_destination(destination)


def test_target_repr_hides_key_data() -> None:
    target = dataclasses.replace(parse_ssh_destination("alice@host"), key_data="SECRET-KEY-TEXT")

    assert "SECRET-KEY-TEXT" not in repr(target)
