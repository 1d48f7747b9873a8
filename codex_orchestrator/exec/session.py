"""Exec sessions: one child on any backend, its reader and delivery thread, subscribers and a transcript.

Flow at a glance: the reader (for a local PTY the one shared reader loop, ``reader_loop.py``; else a thread of
the session's own) stamps each chunk with its read time and queues it → the delivery
thread appends it to the transcript, hands it to subscribers and feeds the latency to the streaming guard →
once the guard trips, queued chunks are coalesced into one event per flush interval. ``ExecSessionManager``
holds up to ``max_sessions`` sessions and prunes exited ones least-recently-used first.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from codex_orchestrator.exec.backend import DEFAULT_KILL_GRACE_S, ChildProcess, ExecBackend, SpawnRequest
from codex_orchestrator.exec.buffer import HeadTailBuffer
from codex_orchestrator.exec.errors import ExecError, SessionLimitReached, SessionNotFound
from codex_orchestrator.exec.guard import DeliveryMode, GuardConfig, GuardSwitch, LatencyStats, StreamingGuard
from codex_orchestrator.exec.local import PtyMaster
from codex_orchestrator.exec.reader_loop import LOCAL_READER, READ_POLL_INTERVAL_S, Registration

log = logging.getLogger(__name__)

STREAM_PTY = "pty"
DEFAULT_MAX_SESSIONS = 64
DEFAULT_HEAD_BYTES = 16 * 1024
DEFAULT_TAIL_BYTES = 16 * 1024
# (READ_POLL_INTERVAL_S: the reader wakes this often to notice a child that exited while a background process
# keeps its terminal open, so no EOF ever comes; after exit it waits one more quiet interval.)
# Bounds how long close() waits for the reader and delivery threads; only a stuck subscriber needs it.
THREAD_JOIN_TIMEOUT_S = 5.0
_MS_PER_S = 1000.0

# run_command's end-of-command marker. The shell expands %s to the exit status, so the echo of the typed
# line (which still reads %s) can never be mistaken for it; the leading newline ends a partial last line.
_SENTINEL_TAG = "__co_done_"
_SENTINEL_COMMAND = "printf '\\n" + _SENTINEL_TAG + '{nonce}_%s__\\n\' "$?"\n'
_SENTINEL_PATTERN = rb"\r?\n" + _SENTINEL_TAG.encode() + rb"%s_(\d+)__\r?\n"
# Longest possible marker; the search of new output starts this far back so a split marker is found.
_SENTINEL_MAX_BYTES = 64
# Run once per shell before the first command: no echo of typed input and no prompts, so a command's
# output holds exactly what the command printed.
_SHELL_PRIMING = "stty -echo; PS1=''; PS2=''; PS0=''; unset PROMPT_COMMAND"


@dataclass(frozen=True)
class OutputEvent:
    """A piece of a session's output. ``seq`` counts from 1 per session without gaps; ``ts`` is the
    ``time.monotonic()`` at which its first byte was read from the child."""

    session_id: str
    seq: int
    ts: float
    stream: str
    data: bytes


@dataclass(frozen=True)
class CommandResult:
    """Outcome of ``ExecSession.run_command``. ``exit_code`` is None on timeout (``timed_out``) and when the
    shell itself ended without reporting one."""

    exit_code: int | None
    output: bytes
    timed_out: bool


Subscriber = Callable[[OutputEvent], None]
# Called with the session id and the switch, on the delivery thread, when the guard trips.
GuardSwitchCallback = Callable[[str, GuardSwitch], None]


class ExecSession:
    """A running (or exited) child with its output threads. Built by ``ExecSessionManager.open``."""

    def __init__(
        self,
        session_id: str,
        backend_name: str,
        argv: Sequence[str],
        process: ChildProcess,
        *,
        guard: GuardConfig | None = None,
        head_bytes: int = DEFAULT_HEAD_BYTES,
        tail_bytes: int = DEFAULT_TAIL_BYTES,
        subscribers: Sequence[Subscriber] = (),
        on_guard_switch: GuardSwitchCallback | None = None,
    ) -> None:
        self.id = session_id
        self.backend_name = backend_name
        self.argv = tuple(argv)
        self.transcript = HeadTailBuffer(head_bytes, tail_bytes)
        self._process = process
        self._on_guard_switch = on_guard_switch
        self._guard = StreamingGuard(guard)
        self._guard_lock = threading.Lock()
        # Copy-on-write so the delivery thread iterates a snapshot without holding the lock.
        self._subscribers: tuple[tuple[object, Subscriber], ...] = tuple((object(), cb) for cb in subscribers)
        self._subscribers_lock = threading.Lock()
        # Chunks read but not yet delivered, each with its read time.
        self._pending: deque[tuple[float, bytes]] = deque()
        self._pending_cv = threading.Condition()
        self._reading_done = False
        self._seq = 0
        self._last_flush = 0.0
        # Notified after every delivered event and when delivery ends; run_command waits on it.
        self._progress = threading.Condition()
        self._delivered = threading.Event()
        self._close_lock = threading.Lock()
        self._closed = False
        self._command_lock = threading.Lock()
        self._shell_primed = False
        self._read_finished = threading.Event()
        self._deliverer = threading.Thread(
            target=self._deliver_loop, name=f"exec-deliver-{session_id}", daemon=True
        )
        self._deliverer.start()
        # A local terminal joins the shared reader loop; any other backend's stream gets a reader thread.
        self._registration: Registration | None = None
        self._reader: threading.Thread | None = None
        if isinstance(process, PtyMaster):
            self._registration = LOCAL_READER.add(process, self._queue, self._end_of_stream)
        else:
            self._reader = threading.Thread(
                target=self._read_loop, name=f"exec-read-{session_id}", daemon=True
            )
            self._reader.start()

    # -- state -------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def exit_code(self) -> int | None:
        """The child's exit code (128+N when killed by signal N), or None while it runs."""
        return self._process.poll()

    @property
    def mode(self) -> DeliveryMode:
        """``streaming`` (one event per chunk read) until the guard trips, then ``buffered``."""
        return self._guard.mode

    @property
    def guard_switch(self) -> GuardSwitch | None:
        """Why and when delivery switched to buffered mode, if it did."""
        return self._guard.switch

    def latency(self) -> LatencyStats:
        """Delivery latency percentiles over the guard's window."""
        with self._guard_lock:
            return self._guard.latency()

    # -- output ------------------------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Receive every event delivered from now on; returns an idempotent unsubscribe function.

        Callbacks run on the session's delivery thread: a slow one delays delivery (and may trip the guard)
        but never reading. One that raises is logged and unsubscribed.
        """
        token = object()
        with self._subscribers_lock:
            self._subscribers = (*self._subscribers, (token, callback))
        return lambda: self._unsubscribe(token)

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Exit code once the child exited and every output event was delivered; None on timeout.

        Do not call from a subscriber: delivery cannot finish while its thread waits here.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        if not self._delivered.wait(timeout_s):
            return None
        return self._process.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))

    # -- input and control -------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send bytes to the child's terminal."""
        self._process.write(data)

    def resize(self, rows: int, cols: int) -> None:
        self._process.resize(rows, cols)

    def signal(self, signum: int) -> None:
        """Deliver ``signum`` to the child's process group."""
        self._process.signal(signum)

    def close(self, grace_s: float = DEFAULT_KILL_GRACE_S) -> int | None:
        """End the whole process tree, let the remaining output be delivered, release the terminal.

        Idempotent; returns the exit code.
        """
        with self._close_lock:
            if self._closed:
                return self.exit_code
            self._closed = True
        # 1. End the tree; the reader then sees EOF after draining what the tree printed.
        code = self._process.terminate_tree(grace_s)
        # 2. Give the reader that chance before the terminal goes; a process that left the tree (it called
        #    setsid) may still hold the terminal, and then the reader stops after its quiet interval.
        self._read_finished.wait(THREAD_JOIN_TIMEOUT_S)
        # 3. Release the terminal (out of the shared loop first), which also wakes a reader thread blocked on it.
        if self._registration is not None:
            LOCAL_READER.remove(self._registration)
        self._process.close()
        if self._reader is not None:
            self._reader.join(THREAD_JOIN_TIMEOUT_S)
        # 4. Let queued output reach subscribers (unless we are a subscriber closing its own session).
        if threading.current_thread() is not self._deliverer:
            self._deliverer.join(THREAD_JOIN_TIMEOUT_S)
        return code

    def run_command(self, command: str, timeout_s: float | None = None) -> CommandResult:
        """Run ``command`` in this session's interactive POSIX shell (``sh``/``bash``) and return its output.

        The first call turns off terminal echo and empties the prompts (``PS1``/``PS2``), so ``output``
        holds only what the command printed, as the terminal shows it (``\\r\\n`` line ends); the typed
        command is not echoed. The shell keeps its cwd and environment between calls. The command must not
        read stdin (it would swallow the end marker). On timeout the command keeps running: interrupt it
        (``write(b"\\x03")``) or close the session. Calls are serialised per session.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._command_lock:
            if not self._shell_primed:
                primed = self._run_marked(_SHELL_PRIMING, deadline)
                if primed.timed_out or primed.exit_code is None:
                    return primed
                self._shell_primed = True
            return self._run_marked(command, deadline)

    def __repr__(self) -> str:
        return (
            f"ExecSession(id={self.id!r}, backend={self.backend_name!r}, pid={self.pid}, "
            f"argv={self.argv!r}, exit_code={self.exit_code}, mode={self.mode!r})"
        )

    # -- internals ---------------------------------------------------------------------------------------

    def _unsubscribe(self, token: object) -> None:
        with self._subscribers_lock:
            self._subscribers = tuple(entry for entry in self._subscribers if entry[0] is not token)

    def _run_marked(self, command: str, deadline: float | None) -> CommandResult:
        """Type ``command`` and the end marker, then collect output until the marker (or end, or deadline)."""
        nonce = secrets.token_hex(8)
        marker = re.compile(_SENTINEL_PATTERN % nonce.encode())
        collected = bytearray()

        def collect(event: OutputEvent) -> None:
            with self._progress:
                collected.extend(event.data)

        unsubscribe = self.subscribe(collect)
        try:
            self.write(command.encode() + b"\n" + _SENTINEL_COMMAND.format(nonce=nonce).encode())
            searched = 0
            with self._progress:
                while True:
                    found = marker.search(collected, max(0, searched - _SENTINEL_MAX_BYTES))
                    if found:
                        return CommandResult(int(found.group(1)), bytes(collected[: found.start()]), False)
                    searched = len(collected)
                    if self._delivered.is_set():
                        # The shell ended (e.g. the command was `exit`): no marker will come.
                        return CommandResult(
                            self._process.wait(THREAD_JOIN_TIMEOUT_S), bytes(collected), False
                        )
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return CommandResult(None, bytes(collected), True)
                    self._progress.wait(remaining)
        finally:
            unsubscribe()

    def _read_loop(self) -> None:
        exit_seen = False
        try:
            while True:
                data = self._process.read(READ_POLL_INTERVAL_S)
                if data is None:
                    if self._process.poll() is None:
                        continue
                    if exit_seen:
                        break  # exited, then a whole interval without output: nothing more is coming
                    exit_seen = True
                    continue
                if not data:
                    break
                self._queue(time.monotonic(), data)
        # Whatever the backend raised, the stream ends here and delivery must still finish so wait() returns.
        except ExecError as exc:
            log.warning("exec session %s: output stream ended early: %s", self.id, exc)
        except Exception:
            log.exception("reading the output of exec session %s failed; its stream ends here", self.id)
        finally:
            self._end_of_stream()

    def _queue(self, read_at: float, data: bytes) -> None:
        with self._pending_cv:
            self._pending.append((read_at, data))
            self._pending_cv.notify()

    def _end_of_stream(self) -> None:
        with self._pending_cv:
            self._reading_done = True
            self._pending_cv.notify()
        self._read_finished.set()

    def _deliver_loop(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                self._deliver(*batch)
        finally:
            with self._progress:
                self._delivered.set()
                self._progress.notify_all()

    def _next_batch(self) -> tuple[float, bytes] | None:
        """The next event's read time and data: one chunk while streaming, all queued chunks once buffered."""
        with self._pending_cv:
            self._pending_cv.wait_for(lambda: self._pending or self._reading_done)
            if not self._pending:
                return None
            if self._guard.mode == "streaming":
                return self._pending.popleft()
            # Buffered: collect until one flush interval after the previous event (or the end of output).
            flush_at = self._last_flush + self._guard.config.buffered_flush_ms / _MS_PER_S
            self._pending_cv.wait_for(
                lambda: self._reading_done, timeout=max(0.0, flush_at - time.monotonic())
            )
            chunks = list(self._pending)
            self._pending.clear()
        return chunks[0][0], b"".join(data for _, data in chunks)

    def _deliver(self, read_at: float, data: bytes) -> None:
        self._seq += 1
        event = OutputEvent(session_id=self.id, seq=self._seq, ts=read_at, stream=STREAM_PTY, data=data)
        self.transcript.append(data)
        for token, callback in self._subscribers:
            try:
                callback(event)
            except Exception:
                # A broken subscriber must not take the session down with it.
                log.exception("subscriber %r of exec session %s raised; unsubscribing it", callback, self.id)
                self._unsubscribe(token)
        with self._progress:
            self._progress.notify_all()
        delivered_at = time.monotonic()
        self._last_flush = delivered_at
        with self._guard_lock:
            switch = self._guard.observe(delivered_at - read_at, now=delivered_at)
        if switch is not None:
            self._report_switch(switch)

    def _report_switch(self, switch: GuardSwitch) -> None:
        log.warning(
            "exec session %s: output delivery P95 %.1f ms > %.1f ms over %d events; buffering output",
            self.id,
            switch.p95_ms,
            switch.threshold_ms,
            switch.samples,
        )
        if self._on_guard_switch is None:
            return
        try:
            self._on_guard_switch(self.id, switch)
        except Exception:
            log.exception("on_guard_switch callback of exec session %s raised", self.id)


_MANAGERS: weakref.WeakSet[ExecSessionManager] = weakref.WeakSet()


def close_every_session(grace_s: float = DEFAULT_KILL_GRACE_S) -> None:
    """End every session this process still has, whatever manager holds it: the last thing an interrupted
    process does, so no command's process tree outlives it."""
    for manager in list(_MANAGERS):
        manager.close_all(grace_s)


class ExecSessionManager:
    """Opens sessions on any backend and keeps up to ``max_sessions`` of them, addressable by id.

    A context manager: leaving it closes every session.
    """

    def __init__(
        self,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        guard: GuardConfig | None = None,
        head_bytes: int = DEFAULT_HEAD_BYTES,
        tail_bytes: int = DEFAULT_TAIL_BYTES,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        self.max_sessions = max_sessions
        self.guard = guard if guard is not None else GuardConfig()
        self.head_bytes = head_bytes
        self.tail_bytes = tail_bytes
        self._id_factory = id_factory if id_factory is not None else _random_session_id
        # Least recently used first.
        self._sessions: OrderedDict[str, ExecSession] = OrderedDict()
        # Ids whose spawn is under way: they hold a slot, but spawning happens outside the lock.
        self._reserved: set[str] = set()
        self._lock = threading.Lock()
        _MANAGERS.add(self)

    def __enter__(self) -> ExecSessionManager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close_all()

    def open(
        self,
        backend: ExecBackend,
        request: SpawnRequest,
        *,
        session_id: str | None = None,
        subscribers: Sequence[Subscriber] = (),
        on_guard_switch: GuardSwitchCallback | None = None,
    ) -> ExecSession:
        """Spawn ``request`` on ``backend`` as a new session; ``subscribers`` see all of its output.

        When every slot is taken, the least recently used exited session is pruned (closed and forgotten);
        raises ``SessionLimitReached`` if none has exited, ``SpawnError`` if the child cannot start.
        """
        # 1. Pick the id and claim a slot, pruning an exited session if that is the only way.
        with self._lock:
            victim = self._prunable_locked()
            # The id comes after the limit check so a refused open does not use one up.
            sid = session_id if session_id is not None else self._id_factory()
            if sid in self._sessions or sid in self._reserved:
                raise ExecError(f"exec session id {sid!r} is already in use; pick another or close it first")
            pruned = self._sessions.pop(victim) if victim is not None else None
            if victim is not None:
                log.info("pruned exited exec session %s to make room for %s", victim, sid)
            self._reserved.add(sid)
        # 2. Spawn outside the lock (an SSH spawn takes a round trip); the pruned session is closed meanwhile.
        process: ChildProcess | None = None
        try:
            if pruned is not None:
                pruned.close()
            process = backend.spawn(request)
            # 3. Start the session's threads.
            session = ExecSession(
                sid,
                backend.name,
                request.argv,
                process,
                guard=self.guard,
                head_bytes=self.head_bytes,
                tail_bytes=self.tail_bytes,
                subscribers=subscribers,
                on_guard_switch=on_guard_switch,
            )
        except BaseException:
            if process is not None:
                process.terminate_tree()
                process.close()
            with self._lock:
                self._reserved.discard(sid)
            raise
        # 4. Publish it in the slot it reserved.
        with self._lock:
            self._reserved.discard(sid)
            self._sessions[sid] = session
        return session

    def get(self, session_id: str) -> ExecSession:
        """The session with that id, now the most recently used; raises ``SessionNotFound``."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise SessionNotFound(session_id)
            self._sessions.move_to_end(session_id)
            return session

    def sessions(self) -> list[ExecSession]:
        """Every session held, least recently used first."""
        with self._lock:
            return list(self._sessions.values())

    def close(self, session_id: str, grace_s: float = DEFAULT_KILL_GRACE_S) -> int | None:
        """End the session's process tree and forget it; returns its exit code. Raises ``SessionNotFound``."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            raise SessionNotFound(session_id)
        return session.close(grace_s)

    def close_all(self, grace_s: float = DEFAULT_KILL_GRACE_S) -> None:
        """Close every session, all at once so the grace periods overlap."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        closers = [
            threading.Thread(target=session.close, args=(grace_s,), name=f"exec-close-{session.id}")
            for session in sessions
        ]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions) + len(self._reserved)

    def _prunable_locked(self) -> str | None:
        """None while a slot is free, else the least recently used exited session to prune.

        Raises ``SessionLimitReached`` when every slot holds a running session.
        """
        if len(self._sessions) + len(self._reserved) < self.max_sessions:
            return None
        for sid, session in self._sessions.items():
            if session.exit_code is not None:
                return sid
        raise SessionLimitReached(self.max_sessions)


def _random_session_id() -> str:
    return secrets.token_hex(6)
