"""Kept-alive sandboxes: one bubblewrap sandbox per (run, instance, sandbox spec) whose launcher forks each call.

A fresh ``bwrap`` per call pays for a namespace and mount set-up every time; here a ``SandboxLauncher`` starts
``launcher_main.py`` inside one sandbox and each call is a message to it (argv, cwd, env, PTY size, with the
PTY's slave end attached), which it starts in a pid namespace of its own (see ``launcher_main``). The PTY's
master end stays here, so reading, writing and resizing are ``LocalPtyProcess``'s. ``SandboxPool`` keeps the
launchers: the first call of a key runs in a bwrap of its own (a one-call run such as ``exec`` never pays for
a launcher); from the second on, the key's launcher serves it. ``close_run`` ends a run's launchers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codex_orchestrator.exec.backend import DEFAULT_KILL_GRACE_S, PINNED_ENV, SpawnRequest
from codex_orchestrator.exec.errors import ExecError, SpawnError
from codex_orchestrator.exec.local import KILL_WAIT_S, PtyMaster, set_window_size
from codex_orchestrator.sandbox import CAP_DROP_ALL, SandboxSpec, wrap_argv

log = logging.getLogger(__name__)

LAUNCHER_SCRIPT = Path(__file__).with_name("launcher_main.py")
HOST_TMP = "/tmp/.host-tmp"  # as sandbox.wrap_argv shows the host's /tmp
# Starting the launcher: bwrap, then a Python without site (-S) or environment (-I).
LAUNCHER_START_TIMEOUT_S = 30.0
# How long a spawn waits for the launcher's answer; it is a fork and an exec.
SPAWN_REPLY_TIMEOUT_S = 30.0
MAX_MESSAGE_BYTES = 1 << 20
# Live sandboxes one process keeps at most; beyond it the least recently started one is ended (a worker that
# serves many runs whose ends it never sees must not pile sandboxes up).
MAX_LIVE_SANDBOXES = 16
# Exit code reported for a call whose launcher went away under it (as if killed by SIGKILL).
LAUNCHER_LOST_EXIT = 128 + 9


class LauncherError(ExecError):
    """The sandbox launcher could not start or went away; the call it was to run did not start."""


class _Call:
    """What the launcher reported about one call; waiters block on ``changed``."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.spawned: dict[str, Any] | None = None
        self.exit_code: int | None = None
        self.done = False


class SandboxLauncher:
    """One live sandbox (``spec``) with a launcher inside; ``spawn`` starts a call in it. Thread-safe."""

    def __init__(self, spec: SandboxSpec, popen: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.spec = spec
        self._popen = popen
        self._sock = sock
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._calls: dict[int, _Call] = {}
        self._next_id = 0
        self._alive = True
        self._tmp_shown: set[str] = set()
        ready = self._recv()
        if ready is None or ready.get("op") != "ready":
            detail = (ready or {}).get("detail", "it exited before saying it was ready")
            self.close()
            raise LauncherError(f"the sandbox launcher did not start: {detail}")
        sock.settimeout(None)  # the start-up bound is over: calls may be quiet for as long as they run
        self._reader = threading.Thread(target=self._read_loop, name="sandbox-launcher", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self._alive and self._popen.poll() is None

    def spawn(self, request: SpawnRequest, tmp_entries: tuple[Path, ...] = ()) -> LauncherProcess:
        """Start ``request`` in this sandbox on a fresh PTY; raises ``SpawnError`` as ``LocalPtyBackend`` does.

        ``tmp_entries``: the host's /tmp entries the call should see (``SandboxSpec.readable_paths``)."""
        argv = list(request.argv)
        if not argv:
            raise SpawnError(argv, "argv is empty")
        env = {**os.environ, **PINNED_ENV, **request.env}
        cwd = request.cwd or str(self.spec.workspace)
        with self._lock:
            if not self.alive:
                raise LauncherError("the sandbox launcher is gone")
            self._next_id += 1
            call_id = self._next_id
            call = self._calls[call_id] = _Call()
        master_fd, slave_fd = os.openpty()
        try:
            set_window_size(master_fd, request.rows, request.cols)
            message = {"op": "spawn", "id": call_id, "argv": argv, "cwd": cwd, "env": env}
            message |= {"rows": request.rows, "cols": request.cols, "tmp": self._new_tmp_names(tmp_entries)}
            self._send(message, [slave_fd])
        except BaseException:
            os.close(master_fd)
            raise
        finally:
            os.close(slave_fd)  # the launcher holds it now; only the command may keep it open
        with call.changed:
            if not call.changed.wait_for(
                lambda: call.spawned is not None or call.done, SPAWN_REPLY_TIMEOUT_S
            ):
                os.close(master_fd)
                raise LauncherError(f"the sandbox launcher did not start {argv[0]!r} in time")
        spawned = call.spawned or {"op": "error", "detail": "the sandbox launcher went away"}
        if spawned.get("op") != "spawned":
            os.close(master_fd)
            raise SpawnError(argv, str(spawned.get("detail", "the command could not be started")))
        return LauncherProcess(self, call_id, call, int(spawned["pid"]), master_fd)

    def _new_tmp_names(self, entries: tuple[Path, ...]) -> list[str]:
        """The host /tmp entries this sandbox has not been told about yet (most calls: none)."""
        with self._lock:
            names = [name for name in _tmp_names(entries) if name not in self._tmp_shown]
            self._tmp_shown.update(names)
        return names

    def order(self, call_id: int, op: str, *signums: int) -> None:
        """``signal`` (the command's process group), ``term`` (every process of the call) or ``kill``."""
        if self.alive:
            with contextlib.suppress(OSError):  # gone meanwhile: its calls are reported ended
                self._send({"op": op, "id": call_id, "signals": list(signums)})

    def close(self) -> None:
        """End the sandbox: the launcher exits at EOF, bwrap (its init) takes every process with it."""
        self._alive = False
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        try:
            self._popen.wait(KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait(KILL_WAIT_S)
        self._sock.close()

    def _send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        data = json.dumps(message, separators=(",", ":")).encode()
        with self._send_lock:
            if fds:
                socket.send_fds(self._sock, [data], fds)
            else:
                self._sock.send(data)

    def _recv(self) -> dict[str, Any] | None:
        try:
            data = self._sock.recv(MAX_MESSAGE_BYTES)
        except OSError:
            return None
        return json.loads(data) if data else None

    def _read_loop(self) -> None:
        while (message := self._recv()) is not None:
            with self._lock:
                call = self._calls.get(int(message.get("id", 0)))
            if call is None:
                continue
            with call.changed:
                if message.get("op") == "exit":
                    call.exit_code, call.done = int(message["code"]), True
                    with self._lock:
                        self._calls.pop(int(message["id"]), None)
                else:
                    call.spawned = message
                call.changed.notify_all()
        self._alive = False
        with self._lock:
            orphans, self._calls = list(self._calls.values()), {}
        for call in orphans:
            with call.changed:
                if not call.done:
                    call.exit_code, call.done = LAUNCHER_LOST_EXIT, True
                call.changed.notify_all()


class LauncherProcess(PtyMaster):
    """A call run by a ``SandboxLauncher``: the PTY is ours, the process is the launcher's to signal and reap."""

    def __init__(
        self, launcher: SandboxLauncher, call_id: int, call: _Call, pid: int, master_fd: int
    ) -> None:
        self._launcher = launcher
        self._call_id = call_id
        self._call = call
        self._sandbox_pid = pid
        super().__init__(master_fd)

    @property
    def pid(self) -> int | None:
        """The command's pid in the sandbox's pid namespace."""
        return self._sandbox_pid

    @property
    def pgid(self) -> int:
        return self._sandbox_pid

    def signal(self, signum: int) -> None:
        self._launcher.order(self._call_id, "signal", signum)

    def poll(self) -> int | None:
        return self._call.exit_code if self._call.done else None

    def wait(self, timeout_s: float | None = None) -> int | None:
        with self._call.changed:
            self._call.changed.wait_for(lambda: self._call.done, timeout_s)
        return self.poll()

    def terminate_tree(self, grace_s: float = DEFAULT_KILL_GRACE_S) -> int | None:
        """SIGTERM, SIGHUP and SIGCONT to every process of the call, ``grace_s``, then SIGKILL its namespace.

        The call has ended once its init has: the kernel ends the rest of its pid namespace with it."""
        if self._call.done:
            return self.poll()
        self._launcher.order(self._call_id, "term", 15, 1, 18)
        if self.wait(grace_s) is None:
            log.info(
                "sandboxed call %d outlived %.1fs grace after SIGTERM; killing it", self.pid or 0, grace_s
            )
            self._launcher.order(self._call_id, "kill")
            self.wait(KILL_WAIT_S)
        return self.poll()


@dataclass(frozen=True)
class _Key:
    run_id: str
    instance: str
    spec: SandboxSpec


class SandboxPool:
    """The live sandboxes of this process, by (run, instance, spec); the first call of a key runs without one.

    Launchers are started by one long-lived thread of the pool: bwrap's ``--die-with-parent`` follows the
    thread that forked it, and a tool call's thread (a Prefect task's) may end before the run does.
    """

    def __init__(self, start: Callable[[SandboxSpec], SandboxLauncher] | None = None) -> None:
        self._start = start or start_launcher
        self._lock = threading.Lock()
        self._seen: set[_Key] = set()
        self._launchers: dict[_Key, SandboxLauncher] = {}
        self._unavailable: set[_Key] = set()
        self._jobs: queue.Queue[tuple[SandboxSpec, queue.Queue[SandboxLauncher | BaseException]]] = (
            queue.Queue()
        )
        self._starter: threading.Thread | None = None

    def launcher_for(self, run_id: str, instance: str, spec: SandboxSpec) -> SandboxLauncher | None:
        """The key's live launcher (started on the key's second call), or None: run in a bwrap of its own."""
        # The host's /tmp entries are not part of the key: on a busy machine they change all the time. A call
        # brings the current list and the launcher links the new ones (``launcher_main._link_tmp_entries``).
        key = _Key(run_id, instance, replace(spec, readable_paths=()))
        with self._lock:
            launcher = self._launchers.get(key)
            if launcher is not None and launcher.alive:
                return launcher
            if key not in self._seen or key in self._unavailable:
                self._seen.add(key)
                return None
        try:
            launcher = self._start_on_starter(spec)
        except (LauncherError, OSError) as exc:
            log.warning(
                "no kept-alive sandbox for run %s (each call gets a bwrap of its own): %s", run_id, exc
            )
            with self._lock:
                self._unavailable.add(key)
            return None
        with self._lock:
            self._launchers[key] = launcher
            evicted = [self._launchers.pop(k) for k in list(self._launchers)[:-MAX_LIVE_SANDBOXES]]
        for old in evicted:
            old.close()
        return launcher

    def close_run(self, run_id: str) -> None:
        """End every sandbox of ``run_id`` (its calls' processes with them)."""
        with self._lock:
            keys = [k for k in self._launchers if k.run_id == run_id]
            launchers = [self._launchers.pop(k) for k in keys]
            self._seen = {k for k in self._seen if k.run_id != run_id}
            self._unavailable = {k for k in self._unavailable if k.run_id != run_id}
        for launcher in launchers:
            launcher.close()

    def close_all(self) -> None:
        with self._lock:
            runs = {k.run_id for k in self._launchers}
        for run_id in runs:
            self.close_run(run_id)

    def _start_on_starter(self, spec: SandboxSpec) -> SandboxLauncher:
        with self._lock:
            if self._starter is None:
                self._starter = threading.Thread(
                    target=self._starter_loop, name="sandbox-starter", daemon=True
                )
                self._starter.start()
        reply: queue.Queue[SandboxLauncher | BaseException] = queue.Queue(maxsize=1)
        self._jobs.put((spec, reply))
        result = reply.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def _starter_loop(self) -> None:
        while True:
            spec, reply = self._jobs.get()
            try:
                reply.put(self._start(spec))
            except BaseException as exc:  # handed to the caller, who raises it
                reply.put(exc)


def _tmp_names(entries: tuple[Path, ...]) -> list[str]:
    # Plain string checks: this runs for every call over every entry of the host's /tmp.
    paths = (str(entry) for entry in entries)
    return [path[5:] for path in paths if path.startswith("/tmp/") and "/" not in path[5:]]


def start_launcher(spec: SandboxSpec) -> SandboxLauncher:
    """bwrap ``spec`` around ``launcher_main.py``; raises ``LauncherError`` if it does not come up."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.settimeout(None)
    argv = wrap_argv(
        [sys.executable, "-I", "-S", str(LAUNCHER_SCRIPT), str(theirs.fileno())], spec, cwd=spec.workspace
    )
    # The launcher keeps its capabilities to give each call a pid namespace and /proc of its own; each call
    # drops them all before it runs (launcher_main._drop_capabilities), as `--cap-drop ALL` would.
    at = argv.index(CAP_DROP_ALL[0])
    argv = (*argv[:at], *argv[at + len(CAP_DROP_ALL) :])
    if HOST_TMP not in argv:
        # The host's /tmp bind comes with the first entry to show; a kept sandbox needs it from the start,
        # for the entries that appear later. Right after the private /tmp, before the binds inside it.
        at = argv.index("--tmpfs") + 2
        argv = (*argv[:at], "--ro-bind", "/tmp", HOST_TMP, *argv[at:])
    try:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,  # the orchestrator's terminal signals reach calls through their own PTYs
        )
    except OSError as exc:
        ours.close()
        raise LauncherError(f"cannot start bwrap for the sandbox launcher: {exc}") from exc
    finally:
        theirs.close()
    deadline = time.monotonic() + LAUNCHER_START_TIMEOUT_S
    ours.settimeout(LAUNCHER_START_TIMEOUT_S)
    try:
        launcher = SandboxLauncher(spec, popen, ours)
    except BaseException:
        popen.kill()
        popen.wait(max(0.0, deadline - time.monotonic()) or KILL_WAIT_S)
        raise
    ours.settimeout(None)
    return launcher


POOL = SandboxPool()
