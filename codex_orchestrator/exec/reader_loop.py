"""One reader thread for every local PTY session: a selector over their master ends.

A thread per session spent most of a busy moment waking up: 64 sessions printing at once were 64 readers
contending for the interpreter. Here one thread waits on all the masters; a ready one is drained (big reads,
up to ``MAX_DRAIN_BYTES`` at a time, handed over as one chunk) to its session's ``on_data``; a child that
exited while something it left behind keeps the terminal open (so no EOF comes) is noticed by a sweep every
``READ_POLL_INTERVAL_S``: after exit, one more quiet interval and its stream ends. Delivery stays the
session's (its own thread): a slow subscriber never holds up reading.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
import time
from collections.abc import Callable
from typing import Protocol

from codex_orchestrator.exec.errors import ExecError

log = logging.getLogger(__name__)

# How often exited children are looked at (their stream ends one quiet interval after exit).
READ_POLL_INTERVAL_S = 0.2
# One wake-up drains at most this much from one terminal before the others get their turn.
MAX_DRAIN_BYTES = 256 * 1024


class Readable(Protocol):
    """What the loop reads: a non-blocking descriptor and the child behind it."""

    def fileno(self) -> int: ...

    def read_nowait(self) -> bytes | None:
        """What is there now; None when nothing is, ``b""`` at EOF."""

    def poll(self) -> int | None: ...


DataCallback = Callable[[float, bytes], None]


class Registration:
    """One terminal in the loop: where its data goes and where it is in its exit sweep."""

    def __init__(self, target: Readable, on_data: DataCallback, on_end: Callable[[], None]) -> None:
        self.target = target
        self.on_data = on_data
        self.on_end = on_end
        self.active = True
        self.heard = False  # data since the last sweep
        self.exit_seen = False


class ReaderLoop:
    """The shared selector thread (started on first use). ``add`` a terminal, ``remove`` it before its fd closes."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        # Held while the loop touches descriptors; remove() takes it, so once it returns the fd is ours.
        self._lock = threading.Lock()
        self._registrations: set[Registration] = set()
        self._thread: threading.Thread | None = None

    def add(self, target: Readable, on_data: DataCallback, on_end: Callable[[], None]) -> Registration:
        registration = Registration(target, on_data, on_end)
        with self._lock:
            self._registrations.add(registration)
            self._selector.register(target.fileno(), selectors.EVENT_READ, registration)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="exec-reader", daemon=True)
                self._thread.start()
        return registration

    def remove(self, registration: Registration) -> None:
        """Stop reading ``registration`` (ending its stream if it has not ended); its fd may be closed after."""
        os.write(self._wake_w, b"x")  # the loop may sit in select(): let it go so we get the lock
        with self._lock:
            self._end_locked(registration)

    def _run(self) -> None:
        last_sweep = time.monotonic()
        while True:
            events = self._selector.select(READ_POLL_INTERVAL_S)
            with self._lock:
                for key, _ in events:
                    if key.data is None:
                        _drain_wake(self._wake_r)
                    elif key.data.active:
                        self._read_locked(key.data)
                now = time.monotonic()
                if now - last_sweep >= READ_POLL_INTERVAL_S:
                    last_sweep = now
                    self._sweep_locked()

    def _read_locked(self, registration: Registration) -> None:
        chunks: list[bytes] = []
        size = 0
        ended = False
        try:
            while size < MAX_DRAIN_BYTES:
                data = registration.target.read_nowait()
                if data is None:
                    break
                if not data:
                    ended = True
                    break
                chunks.append(data)
                size += len(data)
        except ExecError as exc:
            log.warning("exec session output stream ended early: %s", exc)
            ended = True
        if chunks:
            registration.heard = True
            registration.exit_seen = False
            self._call(registration.on_data, time.monotonic(), b"".join(chunks))
        if ended:
            self._end_locked(registration)

    def _sweep_locked(self) -> None:
        for registration in list(self._registrations):
            if registration.heard:
                registration.heard = False
                continue
            if registration.target.poll() is None:
                continue
            if registration.exit_seen:  # exited, then a whole interval without output: nothing more is coming
                self._end_locked(registration)
            else:
                registration.exit_seen = True

    def _end_locked(self, registration: Registration) -> None:
        if not registration.active:
            return
        registration.active = False
        self._registrations.discard(registration)
        with contextlib.suppress(KeyError, ValueError, OSError):  # its descriptor already went
            self._selector.unregister(registration.target.fileno())
        self._call(registration.on_end)

    @staticmethod
    def _call(callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:  # a broken session must not stop every other session's reading
            log.exception("exec reader callback %r raised", callback)


def _drain_wake(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except BlockingIOError:
            return


LOCAL_READER = ReaderLoop()
