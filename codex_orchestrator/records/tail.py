"""Following a run's event log while other processes append to it (``run --json``, reviewers, the SDK)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

# How often an idle follower looks for new lines. Appends are seen within this, whichever process wrote them.
FOLLOW_POLL_S = 0.05


class LogFollower:
    """Calls ``on_line`` for every whole line of ``path``, in order, from a thread of its own, until ``stop``
    has been called and everything written before it has been delivered."""

    def __init__(self, path: Path, on_line: Callable[[str], None], poll_s: float = FOLLOW_POLL_S) -> None:
        self.path = path
        self.on_line = on_line
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"follow-{path.parent.name}", daemon=True)
        self.errors: list[BaseException] = []

    def start(self) -> LogFollower:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Deliver what is written so far, then end the thread."""
        self._stop.set()
        self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        fd: int | None = None
        pending = b""
        try:
            while True:
                stopping = self._stop.is_set()
                if fd is None:
                    try:
                        fd = os.open(self.path, os.O_RDONLY)
                    except FileNotFoundError:
                        if stopping:
                            return
                        time.sleep(self.poll_s)
                        continue
                chunk = os.read(fd, 1 << 20)
                if chunk:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        self._deliver(line.decode("utf-8", errors="replace") + "\n")
                    continue
                if stopping:
                    return
                time.sleep(self.poll_s)
        finally:
            if fd is not None:
                os.close(fd)

    def _deliver(self, line: str) -> None:
        try:
            self.on_line(line)
        except Exception as exc:  # a listener's failure must not stop delivery to the rest
            self.errors.append(exc)
