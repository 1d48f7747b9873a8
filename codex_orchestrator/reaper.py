"""A watchdog that ends a helper process when this process dies, however it dies (SIGKILL included).

``tie_to_this_process(pid)`` starts ``python -m codex_orchestrator.reaper PID START``, whose stdin is a pipe only
this process holds. When this process ends, the kernel closes the pipe, the watchdog reads end-of-file, and it
terminates the helper (SIGTERM, then SIGKILL after a grace period), having checked by its start time that the pid
still names the same process. ``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that started the child
ends, and Prefect may start its server from any thread.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

TERMINATE_GRACE_S = 5.0
# How often an idle watchdog checks that its helper still runs (it leaves as soon as the helper ends).
HELPER_POLL_S = 1.0
_POLL_S = 0.05
_WATCHDOGS: list[subprocess.Popen[bytes]] = []  # their stdin pipes must stay open as long as we live


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has already ended
        return None
    return fields[19]


def tie_to_this_process(pid: int) -> subprocess.Popen[bytes] | None:
    """Make ``pid`` end when this process ends. Returns the watchdog, or None when ``pid`` is already gone."""
    started = start_time(pid)
    if started is None:
        return None
    for done in [w for w in _WATCHDOGS if w.poll() is not None]:  # their helper ended: let them go
        _WATCHDOGS.remove(done)
        if done.stdin is not None:
            done.stdin.close()
    watchdog = subprocess.Popen(
        [sys.executable, "-m", "codex_orchestrator.reaper", str(pid), started],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C to our process group must not end the watchdog before us
        close_fds=True,
    )
    _WATCHDOGS.append(watchdog)
    return watchdog


def end_process(pid: int, started: str, grace_s: float = TERMINATE_GRACE_S) -> None:
    """SIGTERM ``pid`` if it is still the process that started at ``started``; SIGKILL it after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if start_time(pid) != started:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and start_time(pid) == started:
            time.sleep(_POLL_S)


def main(argv: Sequence[str]) -> int:
    pid, started = int(argv[0]), argv[1]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        ready, _, _ = select.select([sys.stdin.buffer], [], [], HELPER_POLL_S)
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break  # nobody writes; end-of-file means the process that started us is gone
        if start_time(pid) != started:
            return 0  # the helper ended by itself: nothing left to watch
    end_process(pid, started)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
