"""ExecSession and ExecSessionManager over real local PTYs: streaming, transcripts, the guard, limits."""

from __future__ import annotations

import itertools
import logging
import signal
import threading
import time
from collections.abc import Callable

import pytest

from codex_orchestrator.exec.backend import SpawnRequest
from codex_orchestrator.exec.errors import ExecError, SessionLimitReached, SessionNotFound, SpawnError
from codex_orchestrator.exec.guard import GuardConfig, GuardSwitch
from codex_orchestrator.exec.local import LocalPtyBackend, session_members
from codex_orchestrator.exec.session import ExecSession, ExecSessionManager, OutputEvent

# Generous bounds so a loaded machine never hangs a test; nothing asserts on how long anything took.
WAIT_S = 15.0

MakeManager = Callable[..., ExecSessionManager]


def request(*argv: str, **fields: object) -> SpawnRequest:
    return SpawnRequest(argv=argv, **fields)  # type: ignore[arg-type]


def sh(script: str) -> SpawnRequest:
    return request("sh", "-c", script)


def wait_until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def assert_gapless(events: list[OutputEvent], session_id: str) -> None:
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert all(event.session_id == session_id and event.stream == "pty" for event in events)
    assert all(earlier.ts <= later.ts for earlier, later in itertools.pairwise(events))


def test_events_are_ordered_without_gaps_and_fill_the_transcript(
    manager: ExecSessionManager, local_backend: LocalPtyBackend
) -> None:
    events: list[OutputEvent] = []
    session = manager.open(
        local_backend, sh("for i in $(seq 1 300); do echo line-$i; done"), subscribers=[events.append]
    )
    assert session.wait(WAIT_S) == 0
    expected = b"".join(b"line-%d\r\n" % i for i in range(1, 301))
    assert_gapless(events, session.id)
    assert b"".join(event.data for event in events) == expected
    assert session.transcript.render() == expected.decode()
    assert session.mode == "streaming"
    assert session.guard_switch is None
    assert session.latency().samples == min(len(events), GuardConfig().window)
    assert (session.backend_name, session.argv) == ("local", ("sh", "-c", session.argv[2]))


def test_child_sees_a_tty(manager: ExecSessionManager, local_backend: LocalPtyBackend) -> None:
    session = manager.open(local_backend, sh("test -t 0 && test -t 1 && test -t 2 && echo is-a-tty"))
    assert session.wait(WAIT_S) == 0
    assert "is-a-tty" in session.transcript.render()


def test_stdin_round_trip(manager: ExecSessionManager, local_backend: LocalPtyBackend) -> None:
    session = manager.open(local_backend, sh('read line; echo "got:$line"'))
    session.write(b"hello\n")
    assert session.wait(WAIT_S) == 0
    assert "got:hello" in session.transcript.render()


def test_resize_is_seen_by_the_child(manager: ExecSessionManager, local_backend: LocalPtyBackend) -> None:
    session = manager.open(
        local_backend, request("sh", "-c", "stty size; read x; stty size", rows=20, cols=70)
    )
    wait_until(lambda: "20 70" in session.transcript.render(), "the first stty size")
    session.resize(45, 150)
    session.write(b"\n")
    assert session.wait(WAIT_S) == 0
    assert "45 150" in session.transcript.render()


@pytest.mark.parametrize(
    ("script", "code"),
    [("exit 0", 0), ("exit 42", 42), ("kill -USR1 $$", 128 + signal.SIGUSR1), ("kill -KILL $$", 137)],
)
def test_exit_codes(
    manager: ExecSessionManager, local_backend: LocalPtyBackend, script: str, code: int
) -> None:
    session = manager.open(local_backend, sh(script))
    assert session.wait(WAIT_S) == code
    assert session.exit_code == code


def test_signal_goes_to_the_child(manager: ExecSessionManager, local_backend: LocalPtyBackend) -> None:
    session = manager.open(local_backend, request("sleep", "300"))
    session.signal(signal.SIGTERM)
    assert session.wait(WAIT_S) == 128 + signal.SIGTERM


def test_timeout_then_close_kills_the_whole_tree(
    manager: ExecSessionManager, local_backend: LocalPtyBackend
) -> None:
    session = manager.open(local_backend, sh("sleep 300 & sleep 300 & wait"))
    assert session.pid is not None
    wait_until(lambda: len(list(session_members(session.pid or 0))) == 3, "sh and two sleeps")
    group = list(session_members(session.pid))
    assert session.wait(0.2) is None  # timed out: still running
    code = session.close(grace_s=WAIT_S)
    assert code is not None and code > 128
    assert [pid for pid in group if pid in set(session_members(session.pid))] == []
    assert session.close() == code  # idempotent
    assert session.exit_code == code


def test_close_ends_the_background_jobs_of_a_shell_session(
    manager: ExecSessionManager, local_backend: LocalPtyBackend
) -> None:
    session = manager.open(local_backend, request("sh"))
    assert session.run_command("sleep 300 & sleep 301 &", timeout_s=WAIT_S).exit_code == 0
    assert session.run_command("sleep 302", timeout_s=0.2).timed_out
    assert session.pid is not None
    wait_until(lambda: len(session_members(session.pid or 0)) == 4, "the shell and its three sleeps")
    session.close(grace_s=WAIT_S)
    assert session_members(session.pid) == {}


def test_wait_returns_after_every_event_reached_a_slow_subscriber(
    manager: ExecSessionManager, local_backend: LocalPtyBackend
) -> None:
    received: list[bytes] = []

    def slow(event: OutputEvent) -> None:
        time.sleep(0.005)
        received.append(event.data)

    session = manager.open(local_backend, sh("for i in $(seq 1 50); do echo n$i; done"), subscribers=[slow])
    assert session.wait(WAIT_S) == 0
    assert b"".join(received) == b"".join(b"n%d\r\n" % i for i in range(1, 51))


def test_large_output_keeps_head_and_tail_and_counts_the_rest(
    make_manager: MakeManager, local_backend: LocalPtyBackend
) -> None:
    manager = make_manager(head_bytes=1000, tail_bytes=2000)
    # 2,000,000 bytes of "abcdefghij\n" lines; the terminal turns each \n into \r\n.
    session = manager.open(local_backend, sh("yes abcdefghij | head -c 2000000"))
    assert session.wait(WAIT_S) == 0
    stream = (b"abcdefghij\n" * 181_819)[:2_000_000].replace(b"\n", b"\r\n")
    transcript = session.transcript
    assert transcript.total_bytes == len(stream) == 2_181_818
    assert transcript.head == stream[:1000]
    assert transcript.tail == stream[-2000:]
    assert transcript.omitted_bytes == len(stream) - 3000
    assert f"\n… {len(stream) - 3000} bytes omitted …\n" in transcript.render()


def test_a_raising_subscriber_is_dropped_and_the_session_goes_on(
    manager: ExecSessionManager, local_backend: LocalPtyBackend, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []
    good: list[bytes] = []

    def broken(event: OutputEvent) -> None:
        calls.append(event.seq)
        raise ValueError("subscriber bug")

    script = "for i in 1 2 3 4 5; do echo x$i; sleep 0.01; done"
    with caplog.at_level(logging.ERROR, logger="codex_orchestrator.exec.session"):
        session = manager.open(
            local_backend, sh(script), subscribers=[broken, lambda event: good.append(event.data)]
        )
        assert session.wait(WAIT_S) == 0
    assert calls == [1]
    assert b"".join(good) == b"".join(b"x%d\r\n" % i for i in range(1, 6))
    assert any("raised; unsubscribing" in record.getMessage() for record in caplog.records)


def test_subscribe_late_and_unsubscribe(manager: ExecSessionManager, local_backend: LocalPtyBackend) -> None:
    session = manager.open(local_backend, sh('echo first; read x; echo "second:$x"; read y; echo third'))
    wait_until(lambda: "first" in session.transcript.render(), "first line")
    seen: list[bytes] = []
    unsubscribe = session.subscribe(lambda event: seen.append(event.data))
    session.write(b"a\n")
    wait_until(lambda: b"second:a" in b"".join(seen), "second line to reach the subscriber")
    unsubscribe()
    unsubscribe()  # idempotent
    session.write(b"b\n")
    assert session.wait(WAIT_S) == 0
    assert b"first" not in b"".join(seen)
    assert b"third" not in b"".join(seen)
    assert "third" in session.transcript.render()


def test_guard_switch_from_a_slow_subscriber_is_recorded_and_coalesces_later_events(
    make_manager: MakeManager, local_backend: LocalPtyBackend
) -> None:
    config = GuardConfig(p95_threshold_ms=1.0, window=16, min_samples=4, buffered_flush_ms=20.0)
    manager = make_manager(guard=config)
    release = threading.Event()
    events: list[tuple[OutputEvent, str]] = []
    switches: list[tuple[str, GuardSwitch]] = []
    holder: list[ExecSession] = []

    def slow(event: OutputEvent) -> None:
        # The first delivery blocks until the child has finished, so every chunk read meanwhile is late.
        release.wait(WAIT_S)
        events.append((event, holder[0].mode))

    lines = 30
    session = manager.open(
        local_backend,
        sh(f"for i in $(seq 1 {lines}); do echo line-$i; sleep 0.02; done"),
        subscribers=[slow],
        on_guard_switch=lambda sid, switch: switches.append((sid, switch)),
    )
    holder.append(session)
    wait_until(lambda: session.exit_code is not None, "the child to exit")
    release.set()
    assert session.wait(WAIT_S) == 0

    switch = session.guard_switch
    assert switch is not None
    assert switches == [(session.id, switch)]
    assert session.mode == "buffered"
    assert (switch.threshold_ms, switch.samples) == (1.0, config.min_samples)
    assert switch.p95_ms > switch.threshold_ms
    delivered = [event for event, _ in events]
    assert_gapless(delivered, session.id)
    assert b"".join(event.data for event in delivered) == b"".join(
        b"line-%d\r\n" % i for i in range(1, lines + 1)
    )
    after_switch = [event for event, mode in events if mode == "buffered"]
    assert after_switch, "events after the switch"
    assert max(event.data.count(b"\n") for event in after_switch) > 1  # queued chunks were coalesced


def test_run_command_keeps_cwd_and_env_across_calls(
    manager: ExecSessionManager, local_backend: LocalPtyBackend, tmp_path: object
) -> None:
    for shell in ("sh", "bash"):
        session = manager.open(local_backend, request(shell, cwd=str(tmp_path)))
        first = session.run_command("pwd", timeout_s=WAIT_S)
        assert (first.exit_code, first.output, first.timed_out) == (0, f"{tmp_path}\r\n".encode(), False)
        assert session.run_command("cd / && export CO_VALUE=kept", timeout_s=WAIT_S).output == b""
        kept = session.run_command('pwd; echo "$CO_VALUE"', timeout_s=WAIT_S)
        assert kept.output == b"/\r\nkept\r\n"
        assert session.run_command("printf partial", timeout_s=WAIT_S).output == b"partial"
        assert session.run_command("false", timeout_s=WAIT_S).exit_code == 1
        assert session.run_command("sh -c 'exit 7'", timeout_s=WAIT_S).exit_code == 7


def test_run_command_timeout_and_shell_exit(
    manager: ExecSessionManager, local_backend: LocalPtyBackend
) -> None:
    session = manager.open(local_backend, request("sh"))
    slow = session.run_command("sleep 300", timeout_s=0.3)
    assert (slow.exit_code, slow.timed_out) == (None, True)
    session.write(b"\x03")  # interrupt the sleep; the shell reads the next command
    assert session.run_command("echo back", timeout_s=WAIT_S).output.endswith(b"back\r\n")
    ended = session.run_command("echo bye; exit 5", timeout_s=WAIT_S)
    assert (ended.exit_code, ended.timed_out) == (5, False)
    assert b"bye" in ended.output


def test_spawn_error_for_a_missing_program_frees_the_slot(
    manager: ExecSessionManager, local_backend: LocalPtyBackend
) -> None:
    with pytest.raises(SpawnError):
        manager.open(local_backend, request("definitely-not-a-program-xyz"))
    assert len(manager) == 0
    assert manager.sessions() == []


def test_get_close_and_unknown_ids(manager: ExecSessionManager, local_backend: LocalPtyBackend) -> None:
    first = manager.open(local_backend, request("sleep", "300"))
    second = manager.open(local_backend, request("true"), session_id="mine")
    assert (first.id, second.id) == ("s1", "mine")
    assert manager.get("s1") is first
    assert manager.sessions() == [second, first]  # least recently used first
    with pytest.raises(ExecError, match="already in use"):
        manager.open(local_backend, request("true"), session_id="mine")
    assert manager.close("s1", grace_s=WAIT_S) == 128 + signal.SIGTERM
    with pytest.raises(SessionNotFound):
        manager.get("s1")
    with pytest.raises(SessionNotFound):
        manager.close("s1")
    assert second.wait(WAIT_S) == 0


def test_sixty_four_sessions_then_lru_pruning(
    make_manager: MakeManager, local_backend: LocalPtyBackend
) -> None:
    manager = make_manager(max_sessions=64)
    sessions = [manager.open(local_backend, sh('read line; echo "got:$line"')) for _ in range(64)]
    assert len(manager) == 64

    # 1. Every slot holds a running session: no room.
    with pytest.raises(SessionLimitReached) as caught:
        manager.open(local_backend, request("true"))
    assert caught.value.limit == 64

    # 2. All 64 run at once and complete correctly.
    for index, session in enumerate(sessions):
        session.write(b"%d\n" % index)
    for index, session in enumerate(sessions):
        assert session.wait(WAIT_S) == 0
        assert f"got:{index}\r\n" in session.transcript.render()

    # 3. Room is made by pruning the least recently used exited session: s1 was just touched, so s2 goes.
    manager.get("s1")
    extra = manager.open(local_backend, request("true"))
    assert extra.id == "s65"
    assert len(manager) == 64
    with pytest.raises(SessionNotFound):
        manager.get("s2")
    assert manager.get("s1") is sessions[0]
    assert extra.wait(WAIT_S) == 0


def test_manager_context_closes_everything(local_backend: LocalPtyBackend) -> None:
    with ExecSessionManager(id_factory=lambda: "only") as manager:
        session = manager.open(local_backend, sh("sleep 300 & sleep 300 & wait"))
        assert session.pid is not None
        wait_until(lambda: len(list(session_members(session.pid or 0))) == 3, "sh and two sleeps")
    assert manager.sessions() == []
    assert session.exit_code is not None
    assert list(session_members(session.pid)) == []
