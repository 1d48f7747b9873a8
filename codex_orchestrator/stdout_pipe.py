"""Writing the command line's live output to stdout when the reader may go away (``exec --json | head -1``).

A closed pipe ends the *stream*, not the run: the tool call goes on to its end and every event is still recorded
in the run's event log, so nothing is lost. The first ``EPIPE`` prints one line on stderr naming where the
events are, points file descriptor 1 at ``/dev/null`` (so Python's flush at exit does not print a traceback of
its own), and later writes are dropped.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading


class StdoutPipe:
    """Thread-safe line writer to ``sys.stdout`` that survives its reader closing the pipe."""

    def __init__(self, events_hint: str = "the run's events.jsonl") -> None:
        self._lock = threading.Lock()
        self._closed = False
        self.events_hint = events_hint

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, text: str) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                sys.stdout.write(text)
                sys.stdout.flush()
            except BrokenPipeError:
                self._close()

    def line(self, text: str) -> None:
        self.write(text if text.endswith("\n") else text + "\n")

    def _close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        print(
            f"codex-orchestrator: stdout was closed; the run goes on and its events stay in {self.events_hint}",
            file=sys.stderr,
        )
