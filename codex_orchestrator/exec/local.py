"""The local exec backend: children on this machine, each in a fresh PTY, session and process group.

The child's terminal is its controlling terminal, so shells get job control, ``SIGWINCH`` on resize and
``SIGHUP`` when we hang up; ``terminate_tree`` ends every process left in the child's session.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import math
import os
import select
import shutil
import signal as signals
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from codex_orchestrator.exec.backend import DEFAULT_KILL_GRACE_S, PINNED_ENV, SpawnRequest
from codex_orchestrator.exec.errors import ExecError, SpawnError

log = logging.getLogger(__name__)

# Reads take at most this much at once; the kernel's PTY buffer rarely holds more than a few KiB anyway.
READ_CHUNK_BYTES = 64 * 1024
# How often terminate_tree looks whether the session is gone; short because callers wait on it.
TREE_POLL_INTERVAL_S = 0.02
# After SIGKILL the session dies at once; this only bounds the wait should the kernel be slow to reap.
KILL_WAIT_S = 5.0
_SIGNAL_EXIT_BASE = 128
_PROC = Path("/proc")


class LocalPtyBackend:
    """Spawns children locally in a new PTY. ``name`` is ``"local"``."""

    @property
    def name(self) -> str:
        return "local"

    def spawn(self, request: SpawnRequest) -> LocalPtyProcess:
        """Start ``request.argv`` in a new PTY, session and process group; raises ``SpawnError``."""
        argv = list(request.argv)
        if not argv:
            raise SpawnError(argv, "argv is empty")
        env = {**os.environ, **PINNED_ENV, **request.env}
        launcher = _SETSID if _SETSID is not None and _resolvable(argv[0], env, request.cwd) else None
        master_fd, slave_fd = os.openpty()
        try:
            # Set the size before the child starts so its first look at the terminal is already right.
            set_window_size(master_fd, request.rows, request.cols)
            # subprocess rather than pty.fork(): its fork+exec happens in C, which stays safe while other
            # threads run (os.fork/forkpty warn about that from Python 3.12 on). The child needs its own
            # session with the PTY as controlling terminal. util-linux `setsid --ctty` does both without a
            # preexec hook, which matters: any preexec_fn makes subprocess fork() the whole interpreter
            # instead of vfork() (≈14 ms per spawn here against ≈2 ms). Where setsid is missing, or the
            # program cannot be found (so Popen raises its usual error), the hook does the same job.
            popen = subprocess.Popen(
                [launcher, "--ctty", *argv] if launcher else argv,
                stdin=slave_fd,
                stdout=slave_fd,
                stderr=slave_fd,
                cwd=request.cwd,
                env=env,
                start_new_session=launcher is None,
                preexec_fn=None if launcher else _take_controlling_terminal,
                close_fds=True,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            os.close(master_fd)
            raise SpawnError(argv, _describe_spawn_failure(exc, request.cwd)) from exc
        finally:
            # Only the child may hold the slave end, or we would never see EOF when it exits.
            os.close(slave_fd)
        if launcher:
            _await_own_session(popen)
        return LocalPtyProcess(popen, master_fd)


class PtyMaster:
    """The master end of a PTY whose slave a child holds: reading, writing, resizing, closing.

    ``read``/``write`` may run in different threads; ``close`` wakes both and waits for them to leave
    before the descriptor is closed, so its number can never be reused under a running call. Subclasses
    say how the child is signalled, polled and ended (``LocalPtyProcess``, the sandbox launcher's calls).
    """

    def __init__(self, master_fd: int) -> None:
        self._master_fd = master_fd
        os.set_blocking(master_fd, False)
        # A byte in this pipe tells a read or write blocked in poll() that close() wants the descriptor.
        self._wake_r, self._wake_w = os.pipe()
        self._state = threading.Condition()
        self._fd_users = 0
        self._closed = False
        self._eof = False

    @property
    def pid(self) -> int | None:
        raise NotImplementedError

    def poll(self) -> int | None:
        raise NotImplementedError

    def terminate_tree(self, grace_s: float = DEFAULT_KILL_GRACE_S) -> int | None:
        raise NotImplementedError

    def fileno(self) -> int:
        """The master end, for a selector (``exec/reader_loop.py``); valid until ``close``."""
        return self._master_fd

    def read_nowait(self) -> bytes | None:
        """What the terminal holds now (up to ``READ_CHUNK_BYTES``): None when nothing, ``b""`` at EOF.

        For the one reader that owns the descriptor between spawn and ``close`` (the shared reader loop)."""
        if self._eof or self._closed:
            return b""
        try:
            data = os.read(self._master_fd, READ_CHUNK_BYTES)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: every slave end is closed, which is EOF
                raise ExecError(f"reading from pid {self.pid} failed: {exc.strerror}") from exc
            data = b""
        if not data:
            self._eof = True
        return data

    def read(self, timeout_s: float) -> bytes | None:
        """Up to ``READ_CHUNK_BYTES``; None after ``timeout_s`` of quiet; ``b""`` at EOF or once closed."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        try:
            with self._fd_in_use():
                while not self._eof:
                    if not self._wait_for(select.POLLIN, deadline):
                        return None
                    try:
                        data = os.read(self._master_fd, READ_CHUNK_BYTES)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        # Linux reports "every slave end closed" as EIO on the master: that is EOF.
                        if exc.errno != errno.EIO:
                            raise ExecError(f"reading from pid {self.pid} failed: {exc.strerror}") from exc
                        data = b""
                    if not data:
                        self._eof = True
                    return data
        except _Closed:
            pass
        return b""

    def write(self, data: bytes) -> None:
        """Send all of ``data``; blocks while the terminal's input queue is full (until ``close``)."""
        view = memoryview(data)
        try:
            with self._fd_in_use():
                while view:
                    if not self._wait_for(select.POLLOUT, None):
                        continue
                    try:
                        written = os.write(self._master_fd, view)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        raise ExecError(f"writing to pid {self.pid} failed: {exc.strerror}") from exc
                    view = view[written:]
        except _Closed as exc:
            raise ExecError(f"cannot write to pid {self.pid}: its terminal is closed") from exc

    def resize(self, rows: int, cols: int) -> None:
        """Set the terminal size; the kernel sends ``SIGWINCH`` to the foreground process group."""
        try:
            with self._fd_in_use():
                set_window_size(self._master_fd, rows, cols)
        except _Closed as exc:
            raise ExecError(f"cannot resize the terminal of pid {self.pid}: it is closed") from exc

    def close(self) -> None:
        """Close the master end (waking blocked reads/writes) and reap the child.

        A child still running is ended with its session via ``terminate_tree``. Idempotent.
        """
        with self._state:
            if self._closed:
                return
            self._closed = True
            os.write(self._wake_w, b"x")
            self._state.wait_for(lambda: self._fd_users == 0)
            for fd in (self._master_fd, self._wake_r, self._wake_w):
                os.close(fd)
        if self.poll() is None:
            self.terminate_tree()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pid={self.pid}, exit_code={self.poll()}, closed={self._closed})"

    @contextmanager
    def _fd_in_use(self) -> Iterator[None]:
        with self._state:
            if self._closed:
                raise _Closed
            self._fd_users += 1
        try:
            yield
        finally:
            with self._state:
                self._fd_users -= 1
                self._state.notify_all()

    def _wait_for(self, event: int, deadline: float | None) -> bool:
        """Poll the master for ``event`` until ``deadline``; raises ``_Closed`` when close() wakes us."""
        poller = select.poll()
        poller.register(self._master_fd, event)
        poller.register(self._wake_r, select.POLLIN)
        timeout_ms = None if deadline is None else max(0, math.ceil((deadline - time.monotonic()) * 1000))
        ready = poller.poll(timeout_ms)
        if any(fd == self._wake_r for fd, _ in ready):
            raise _Closed
        # POLLHUP/POLLERR count as ready: the following read or write reports what happened.
        return bool(ready)


class LocalPtyProcess(PtyMaster):
    """A local child on the slave side of a PTY whose master end we hold."""

    def __init__(self, popen: subprocess.Popen[bytes], master_fd: int) -> None:
        self._popen = popen
        super().__init__(master_fd)

    @property
    def pid(self) -> int | None:
        return self._popen.pid

    @property
    def pgid(self) -> int:
        """The child's process group (and session) id: the child leads both."""
        return self._popen.pid

    def signal(self, signum: int) -> None:
        """Deliver ``signum`` to the child's whole process group (nothing if it is gone)."""
        _signal_group(self.pgid, signum)

    def poll(self) -> int | None:
        return _exit_code(self._popen.poll())

    def wait(self, timeout_s: float | None = None) -> int | None:
        try:
            return _exit_code(self._popen.wait(timeout_s))
        except subprocess.TimeoutExpired:
            return None

    def terminate_tree(self, grace_s: float = DEFAULT_KILL_GRACE_S) -> int | None:
        """SIGTERM and SIGHUP every process group of the child's session, wait ``grace_s``, then SIGKILL.

        That reaches grandchildren in the child's group and also the jobs an interactive shell moved to
        groups of their own; only a process that started a new session escapes. Returns the exit code.
        """
        if self._tree_gone():
            return self.poll()
        # SIGHUP as well, as when a terminal goes away: interactive shells ignore SIGTERM but exit on SIGHUP
        # (so a shell session ends at once instead of after the whole grace), and SIGCONT because a stopped
        # process only acts on either once continued.
        self._signal_tree(signals.SIGTERM, signals.SIGHUP, signals.SIGCONT)
        if not self._wait_tree_gone(time.monotonic() + grace_s):
            log.info("session %d outlived %.1fs grace after SIGTERM; sending SIGKILL", self.pgid, grace_s)
            self._signal_tree(signals.SIGKILL)
            if not self._wait_tree_gone(time.monotonic() + KILL_WAIT_S):
                log.warning("session %d still has processes %.1fs after SIGKILL", self.pgid, KILL_WAIT_S)
        return self.wait(KILL_WAIT_S)

    def _signal_tree(self, *signums: int) -> None:
        # The child's own group first: it exists even where /proc does not.
        groups = [self.pgid, *sorted(_session_groups(self.pgid) - {self.pgid})]
        for signum in signums:
            for pgid in groups:
                _signal_group(pgid, signum)

    def _tree_gone(self) -> bool:
        return self._popen.poll() is not None and not _session_alive(self.pgid)

    def _wait_tree_gone(self, deadline: float) -> bool:
        while not self._tree_gone():
            if time.monotonic() >= deadline:
                return False
            time.sleep(TREE_POLL_INTERVAL_S)
        return True


class _Closed(Exception):
    """Internal: the master descriptor is closed (or closing)."""


# setsid(1) calls setsid() and TIOCSCTTY, then execs the command in place (it only forks when already a
# process-group leader, which a child started without start_new_session is not).
_SETSID = shutil.which("setsid")


# setsid(1) becomes the session leader a moment after Popen returns; until then a signal to the group is lost.
SESSION_SETUP_TIMEOUT_S = 2.0


def _await_own_session(popen: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SESSION_SETUP_TIMEOUT_S
    while time.monotonic() < deadline and popen.poll() is None:
        try:
            if os.getsid(popen.pid) == popen.pid:
                return
        except ProcessLookupError:
            return
        os.sched_yield()  # it takes well under a millisecond: yield rather than sleep a scheduler tick


def _resolvable(program: str, env: dict[str, str], cwd: str | None) -> bool:
    """Would exec find ``program``? If not, spawn without the launcher so Popen reports the real error."""
    if "/" in program:
        path = program if os.path.isabs(program) or cwd is None else os.path.join(cwd, program)
        return os.access(path, os.X_OK) and not os.path.isdir(path)
    return shutil.which(program, path=env.get("PATH", os.defpath)) is not None


def _take_controlling_terminal() -> None:
    # Runs in the child between fork and exec, after setsid(): stdin is the PTY slave.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_window_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        # A member changed uid (setuid program); the others still got the signal.
        log.warning("not permitted to send signal %d to every member of process group %d", signum, pgid)


def _session_alive(sid: int) -> bool:
    """Whether any process of session ``sid`` still runs; zombies do not count.

    Zombies matter because an orphaned grandchild is reaped by init, and some inits (containers) never do.
    Without ``/proc`` only the child's own group (pgid == sid) can be checked.
    """
    if not _PROC.is_dir():
        try:
            os.killpg(sid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    return bool(session_members(sid))


def _session_groups(sid: int) -> set[int]:
    return set(session_members(sid).values()) if _PROC.is_dir() else set()


def session_members(sid: int) -> dict[int, int]:
    """``{pid: pgid}`` of the live (non-zombie) processes in session ``sid``, from Linux ``/proc``."""
    # Runs at every session close over every process of the host: raw os calls and bytes, no pathlib
    # (three times faster, and this is on the per-tool-call path).
    members: dict[int, int] = {}
    for name in os.listdir(_PROC):
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{name}/stat", os.O_RDONLY)
            try:
                stat = os.read(fd, 1024)
            finally:
                os.close(fd)
        except OSError:
            continue  # exited while we looked
        # The command name in parentheses may hold spaces and parentheses; the fields after it do not:
        # state, ppid, pgrp, session, ...
        fields = stat[stat.rfind(b")") + 2 :].split(None, 5)
        if len(fields) > 4 and int(fields[3]) == sid and fields[0] not in (b"Z", b"X"):
            members[int(name)] = int(fields[2])
    return members


def _exit_code(returncode: int | None) -> int | None:
    """subprocess reports death by signal N as -N; shells (and we) say 128+N."""
    if returncode is None or returncode >= 0:
        return returncode
    return _SIGNAL_EXIT_BASE - returncode


def _describe_spawn_failure(exc: BaseException, cwd: str | None) -> str:
    if isinstance(exc, OSError):
        if cwd is not None and exc.filename == cwd:
            return f"working directory {cwd!r}: {exc.strerror}"
        if exc.filename is not None:
            return f"{exc.strerror}: {exc.filename!r}"
        return exc.strerror or str(exc)
    return str(exc)
