"""Kept-alive sandboxes: one bubblewrap sandbox per (run, instance, sandbox spec) whose launcher runs each call.

A fresh ``bwrap`` per call pays for a namespace and mount set-up every time; here a ``SandboxLauncher`` starts
``launcher_main.py`` inside one sandbox, which prepares *call inits* ahead of the calls (each already alone in
a pid namespace with its own /proc, without capabilities) and hands each one's socket over. A call is then a
message straight to a prepared init (argv, cwd, env, PTY size, with the PTY's slave end attached) and its
answer; the init reports the call's end itself, and the launcher reports every init's exit (the one that
counts when an init was killed). The PTY's master end stays here, so reading, writing and resizing are
``LocalPtyProcess``'s. ``SandboxPool`` keeps the launchers: the first call of a key runs in a bwrap of its
own (a one-call run such as ``exec`` never pays for a launcher); from the second on, the key's launcher
serves it. ``close_run`` ends a run's launchers.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import queue
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from codex_orchestrator.exec.backend import DEFAULT_KILL_GRACE_S, PINNED_ENV, SpawnRequest
from codex_orchestrator.exec.errors import ExecError, SpawnError
from codex_orchestrator.exec.launcher_main import MAX_MESSAGE_BYTES, send_message  # one protocol, both sides
from codex_orchestrator.exec.local import KILL_WAIT_S, PtyMaster, set_window_size
from codex_orchestrator.sandbox import CAP_DROP_ALL, SandboxSpec, wrap_argv

log = logging.getLogger(__name__)

LAUNCHER_SCRIPT = Path(__file__).with_name("launcher_main.py")
HOST_TMP = "/tmp/.host-tmp"  # as sandbox.wrap_argv shows the host's /tmp
# Starting the launcher: bwrap, then a Python without site (-S) or environment (-I).
LAUNCHER_START_TIMEOUT_S = 30.0
# How long a spawn waits for the launcher's answer; it is a fork and an exec.
SPAWN_REPLY_TIMEOUT_S = 30.0
# Live sandboxes one process keeps at most; beyond it the least recently started one is ended (a worker that
# serves many runs whose ends it never sees must not pile sandboxes up).
MAX_LIVE_SANDBOXES = 16
# Prepared call inits a sandbox keeps ready at most (it keeps as many as it has seen calls running at once).
MAX_SPARES = 8
# The reader's wake-up pipe, as the selector's key data (the launcher's socket has None, a call its _Call).
_WAKE = "wake"
# Exit code reported for a call whose launcher went away under it (as if killed by SIGKILL).
LAUNCHER_LOST_EXIT = 128 + 9
# How much of bwrap's (or the launcher's) stderr a start-up failure quotes: its last lines say why.
STDERR_TAIL_CHARS = 500


def _recv_fds(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    try:
        # Close-on-exec: a process this one starts must not hold a call init's socket (the init ends its call
        # when the socket's last holder lets go of it).
        data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE_BYTES, 1, socket.MSG_CMSG_CLOEXEC)
    except OSError:
        return None, []
    return (json.loads(data) if data else None), fds


class LauncherError(ExecError):
    """The sandbox launcher could not start or went away; the call it was to run did not start."""


class _Call:
    """One prepared call init (a spare until a spawn takes it) and what the launcher reported about it."""

    def __init__(self, call_id: int, control: socket.socket) -> None:
        self.id = call_id
        self.control = control  # straight to the call's init: spawn, signal and term go here
        self.changed = threading.Condition()
        self.exit_code: int | None = None
        self.done = False
        self.closed = False
        self.running = False  # taken by a spawn and not yet ended (``SandboxLauncher._running`` counts these)

    def send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        """Send to the init; raises OSError if it is gone or the call has been let go of."""
        with self.changed:
            if self.closed:
                raise OSError(errno.EBADF, "the call's control socket is closed")
            send_message(self.control, message, fds)

    def release(self) -> None:
        """Let go of the init: if it still waits for a call, it exits; if its call still runs, it ends."""
        with self.changed:
            if not self.closed:
                self.closed = True
                self.control.close()


class SandboxLauncher:
    """One live sandbox (``spec``) with a launcher inside; ``spawn`` starts a call in it. Thread-safe.

    The launcher hands over call inits prepared ahead (``spare``); a spawn takes one and talks to it directly,
    so a call's path is one message each way plus the fork and exec, with no namespace set-up on it. The pool
    of spares follows the most calls seen at once (up to ``MAX_SPARES``); a spawn that finds none asks for one
    of its own rather than wait for another call's."""

    def __init__(self, spec: SandboxSpec, popen: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.spec = spec
        self._popen = popen
        self._sock = sock
        self._send_lock = threading.Lock()
        self._lock = threading.Condition()
        self._calls: dict[int, _Call] = {}  # every init the launcher has handed over and not reported ended
        self._spares: list[_Call] = []  # inits waiting for a call
        self._asked = 0  # spares asked for and not yet handed over
        self._running = 0  # calls spawned and not yet ended
        self._wanted = 1  # spares to keep ready: the most calls seen running at once
        self._unprepared: str | None = None  # why the launcher could not prepare the last one asked for
        self._alive = True
        self._tmp_shown: set[str] = set()
        self._tmp_told: tuple[Path, ...] | None = None  # the last listing told in full (the same tuple: skip)
        self._to_watch: list[_Call] = []  # started calls for the reader to watch, and calls to let go of
        self._to_release: list[_Call] = []
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._reading = False  # the reader thread runs (it owns the sockets it watches)
        self._reader: threading.Thread | None = None
        ready, _ = _recv_fds(sock)
        if ready is None or ready.get("op") != "ready":
            detail = (ready or {}).get("detail", "it exited before saying it was ready")
            self.close()
            raise LauncherError(f"the sandbox launcher did not start: {detail}")
        sock.settimeout(None)  # the start-up bound is over: calls may be quiet for as long as they run
        self._reading = True
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
        call = self._take_spare(argv[0])
        master_fd, slave_fd = os.openpty()
        try:
            set_window_size(master_fd, request.rows, request.cols)
            message: dict[str, Any] = {"op": "spawn", "argv": argv, "cwd": cwd, "env": env}
            message |= {"rows": request.rows, "cols": request.cols, "tmp": self._new_tmp_names(tmp_entries)}
            try:
                call.send(message, [slave_fd])
            except OSError as exc:
                raise LauncherError(
                    f"the sandbox launcher lost the call init for {argv[0]!r}: {exc}"
                ) from exc
            finally:
                os.close(slave_fd)  # the init holds it now; only the command may keep it open
            spawned = self._reply(call, argv[0])
        except BaseException:
            os.close(master_fd)
            self._call_ended(call)
            raise
        self._top_up()  # the next spare is prepared now, not while this call was being started
        if spawned.get("op") != "spawned":
            os.close(master_fd)
            self._call_ended(call)
            raise SpawnError(argv, str(spawned.get("detail", "the command could not be started")))
        call.control.settimeout(None)
        self._watch(call)
        return LauncherProcess(self, call, int(spawned["pid"]), master_fd)

    def _take_spare(self, program: str) -> _Call:
        """A prepared init for one call: a ready one, else one asked for now (never another call's)."""
        with self._lock:
            if not self.alive:
                raise LauncherError("the sandbox launcher is gone")
            if not self._spares:
                self._unprepared = None
                self._ask_locked()
                if not self._lock.wait_for(
                    lambda: self._spares or self._unprepared or not self._alive, SPAWN_REPLY_TIMEOUT_S
                ):
                    raise LauncherError(f"the sandbox launcher prepared no call for {program!r} in time")
                if not self._spares:
                    why = self._unprepared or "it is gone"
                    raise LauncherError(
                        f"the sandbox launcher could not prepare a call for {program!r}: {why}"
                    )
            call = self._spares.pop(0)
            call.running = True
            self._running += 1
            self._wanted = min(MAX_SPARES, max(self._wanted, self._running))
        return call

    def _top_up(self) -> None:
        with self._lock:
            while self.alive and len(self._spares) + self._asked < self._wanted:
                self._ask_locked()

    def _ask_locked(self) -> None:
        self._asked += 1
        with contextlib.suppress(OSError):  # gone meanwhile: the reader notices and wakes the waiters
            self.send_message({"op": "prepare"})

    def _reply(self, call: _Call, program: str) -> dict[str, Any]:
        """The init's answer to a spawn: ``spawned`` or ``error``, straight from it."""
        call.control.settimeout(SPAWN_REPLY_TIMEOUT_S)
        try:
            data = call.control.recv(MAX_MESSAGE_BYTES)
        except TimeoutError as exc:
            raise LauncherError(f"the sandbox launcher did not start {program!r} in time") from exc
        except OSError as exc:
            raise LauncherError(f"the sandbox launcher lost the call of {program!r}: {exc}") from exc
        if not data:
            raise LauncherError(f"the sandbox launcher went away before starting {program!r}")
        reply: dict[str, Any] = json.loads(data)
        return reply

    def _call_ended(self, call: _Call) -> None:
        """A spawn that failed: its init is let go of (it exits; the launcher reports it, unseen)."""
        call.release()
        self._not_running(call)

    def _not_running(self, call: _Call) -> None:
        with self._lock:
            if call.running:
                call.running = False
                self._running -= 1

    def _new_tmp_names(self, entries: tuple[Path, ...]) -> list[str]:
        """The host /tmp entries this sandbox has not been told about yet (most calls: none)."""
        with self._lock:
            # ``host_tmp_entries`` hands out the same tuple while /tmp is unchanged: nothing new in it.
            if entries is self._tmp_told:
                return []
            names = [name for name in _tmp_names(entries) if name not in self._tmp_shown]
            self._tmp_shown.update(names)
            self._tmp_told = entries
        return names

    def order(self, call: _Call, op: str, *signums: int) -> None:
        """``signal`` (the command's process group), ``term`` (every process of the call) or ``kill``."""
        with contextlib.suppress(OSError):  # gone meanwhile: its call is reported ended
            if op == "kill":
                self.send_message({"op": "kill", "id": call.id})
            else:
                call.send({"op": op, "signals": list(signums)})

    def close(self) -> None:
        """End the sandbox: the launcher exits at EOF, bwrap (its init) takes every process with it."""
        self._alive = False
        with self._lock:
            spares, self._spares = self._spares, []
            self._lock.notify_all()
        for spare in spares:
            spare.release()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        try:
            self._popen.wait(KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait(KILL_WAIT_S)
        if self._reader is not None:
            self._reader.join(KILL_WAIT_S)  # it ends at the launcher's EOF; then the wake pipe is ours
        if not self._reading:
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._sock.close()

    def send_message(self, message: dict[str, Any]) -> None:
        with self._send_lock:
            send_message(self._sock, message)

    def _read_loop(self) -> None:
        """The launcher's reports (spares handed over, inits' exits) and the running calls' own exit reports."""
        selector = selectors.DefaultSelector()
        selector.register(self._sock, selectors.EVENT_READ, None)
        selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        watched: dict[int, _Call] = {}
        try:
            while True:
                for key, _ in selector.select():
                    if key.data is None:
                        if not self._on_launcher_message():
                            return
                    elif key.data is _WAKE:
                        self._update_watch(selector, watched)
                    elif key.data.id in watched:  # not one let go of earlier in this same batch
                        self._on_call_report(selector, watched, key.data)
        finally:  # the launcher is gone (or this thread failed): no call may wait for a report forever
            selector.close()
            self._lost()

    def _on_call_report(
        self, selector: selectors.BaseSelector, watched: dict[int, _Call], call: _Call
    ) -> None:
        """A running call's init reports its end (or closed its socket: the launcher's report follows)."""
        report, _ = _recv_fds(call.control)
        if report is None or report.get("op") == "exit":
            selector.unregister(call.control)
            del watched[call.id]
        if report is not None and report.get("op") == "exit":
            self._end(call, int(report["code"]))

    def _update_watch(self, selector: selectors.BaseSelector, watched: dict[int, _Call]) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)
        with self._lock:
            adding, self._to_watch = self._to_watch, []
            releasing, self._to_release = self._to_release, []
        for call in adding:
            if not call.closed and not call.done:
                selector.register(call.control, selectors.EVENT_READ, call)
                watched[call.id] = call
        for call in releasing:
            if watched.pop(call.id, None) is not None:
                selector.unregister(call.control)
            call.release()

    def _on_launcher_message(self) -> bool:
        message, fds = _recv_fds(self._sock)
        if message is None:
            return False
        op, call_id = message.get("op"), int(message.get("id", 0))
        if op == "spare" and len(fds) == 1:
            self._add_spare(_Call(call_id, socket.socket(fileno=fds[0])))
            return True
        if op == "unprepared":
            with self._lock:
                self._asked = max(0, self._asked - 1)
                self._unprepared = str(message.get("detail", "it could not prepare a call"))
                self._lock.notify_all()
        for fd in fds:
            os.close(fd)
        if op == "exit":
            with self._lock:
                call = self._calls.pop(call_id, None)
                if call is not None and call in self._spares:  # an init that died unused
                    self._spares.remove(call)
            if call is not None:
                self._end(call, int(message["code"]))
        return True

    def _lost(self) -> None:
        self._alive = False
        with self._lock:
            self._reading = False
            releasing, self._to_release = self._to_release, []
            orphans, self._calls, self._spares = list(self._calls.values()), {}, []
            self._lock.notify_all()
        for call in orphans:
            self._end(call, LAUNCHER_LOST_EXIT)
        for call in releasing:
            call.release()

    def _watch(self, call: _Call) -> None:
        """Hand a started call's socket to the reader: the init reports the call's end on it."""
        with self._lock:
            self._to_watch.append(call)
        os.write(self._wake_w, b"w")

    def release(self, call: _Call) -> None:
        """Let go of a call's init (the reader's, if it watches the socket: never closed under its selector)."""
        with self._lock:
            if self._reading:
                self._to_release.append(call)
                os.write(self._wake_w, b"r")
                return
        call.release()

    def _add_spare(self, call: _Call) -> None:
        with self._lock:
            self._asked = max(0, self._asked - 1)
            self._calls[call.id] = call
            if self._alive:
                self._spares.append(call)
                self._lock.notify_all()
                return
        call.release()

    def _end(self, call: _Call, code: int) -> None:
        with call.changed:
            if not call.done:
                call.exit_code, call.done = code, True
            call.changed.notify_all()
        self._not_running(call)


class LauncherProcess(PtyMaster):
    """A call run by a ``SandboxLauncher``: the PTY is ours, the process is the launcher's to signal and reap."""

    def __init__(self, launcher: SandboxLauncher, call: _Call, pid: int, master_fd: int) -> None:
        self._launcher = launcher
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
        self._launcher.order(self._call, "signal", signum)

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
        self._launcher.order(self._call, "term", 15, 1, 18)
        if self.wait(grace_s) is None:
            log.info(
                "sandboxed call %d outlived %.1fs grace after SIGTERM; killing it", self.pid or 0, grace_s
            )
            self._launcher.order(self._call, "kill")
            self.wait(KILL_WAIT_S)
        return self.poll()

    def close(self) -> None:
        """Close the PTY (ending the call if it still runs, as ``PtyMaster.close`` does), then its init's socket."""
        super().close()
        self._launcher.release(self._call)


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
        self._unavailable: dict[_Key, str] = {}  # keys whose launcher did not start, and why
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
                self._unavailable[key] = str(exc)
            return None
        with self._lock:
            self._launchers[key] = launcher
            evicted = [self._launchers.pop(k) for k in list(self._launchers)[:-MAX_LIVE_SANDBOXES]]
        for old in evicted:
            old.close()
        return launcher

    def start_failure(self, run_id: str, instance: str, spec: SandboxSpec) -> str | None:
        """Why the key's kept-alive sandbox could not start (bwrap's own words included), or None."""
        with self._lock:
            return self._unavailable.get(_Key(run_id, instance, replace(spec, readable_paths=())))

    def kept(self, run_id: str) -> tuple[int, list[str]]:
        """How many kept-alive sandboxes ``run_id`` has live, and why any of its keys has none."""
        with self._lock:
            live = sum(1 for k, v in self._launchers.items() if k.run_id == run_id and v.alive)
            return live, [why for k, why in self._unavailable.items() if k.run_id == run_id]

    def close_run(self, run_id: str) -> None:
        """End every sandbox of ``run_id`` (its calls' processes with them)."""
        with self._lock:
            keys = [k for k in self._launchers if k.run_id == run_id]
            launchers = [self._launchers.pop(k) for k in keys]
            self._seen = {k for k in self._seen if k.run_id != run_id}
            self._unavailable = {k: v for k, v in self._unavailable.items() if k.run_id != run_id}
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
    """bwrap ``spec`` around ``launcher_main.py``; raises ``LauncherError`` (with bwrap's message, if it said
    one) if it does not come up."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.settimeout(None)
    # The launcher's own interpreter and script must be visible in the sandbox wherever they live: under /tmp
    # the private tmpfs hides them (a checkout or virtualenv in /tmp; the listing of /tmp a call brings is
    # capped, and a bare spec brings none), and bwrap cannot even exec the interpreter.
    shown = replace(spec, readable_paths=(*spec.readable_paths, *launcher_tmp_entries()))
    argv = wrap_argv(
        [sys.executable, "-I", "-S", str(LAUNCHER_SCRIPT), str(theirs.fileno())], shown, cwd=spec.workspace
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
    # bwrap's and the launcher's stderr: a file, not a pipe, so nothing said later can block them; it is read
    # only when the launcher does not come up, to say why.
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed below, or with the launcher)
    try:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,  # the orchestrator's terminal signals reach calls through their own PTYs
        )
    except OSError as exc:
        ours.close()
        stderr.close()
        raise LauncherError(f"cannot start bwrap for the sandbox launcher: {exc}") from exc
    finally:
        theirs.close()
    deadline = time.monotonic() + LAUNCHER_START_TIMEOUT_S
    ours.settimeout(LAUNCHER_START_TIMEOUT_S)
    try:
        launcher = SandboxLauncher(spec, popen, ours)
    except BaseException as exc:
        popen.kill()
        popen.wait(max(0.0, deadline - time.monotonic()) or KILL_WAIT_S)
        said = _tail(stderr) if isinstance(exc, LauncherError) else ""
        if said:  # bwrap's own words ("bwrap: execvp ...: No such file or directory")
            raise LauncherError(f"{exc}; it said: {said}") from exc
        raise
    finally:
        stderr.close()  # the launcher keeps its own descriptor of the file
    ours.settimeout(None)
    return launcher


def launcher_tmp_entries() -> tuple[Path, ...]:
    """The host /tmp entries the launcher runs from: its interpreter (a virtualenv's, and the one that points
    to), that interpreter's library, and this package. Most installs: none."""
    paths = {sys.executable, sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths |= {os.path.realpath(sys.executable), str(LAUNCHER_SCRIPT), os.path.realpath(LAUNCHER_SCRIPT)}
    entries = {os.path.normpath(p).split("/")[2] for p in paths if os.path.normpath(p).startswith("/tmp/")}
    return tuple(Path("/tmp", name) for name in sorted(entries))


def _tail(stderr: IO[bytes]) -> str:
    """The last lines a failed launcher's bwrap (or Python) wrote, on one line."""
    stderr.seek(0)
    text = stderr.read().decode("utf-8", errors="replace")
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())[-STDERR_TAIL_CHARS:]


POOL = SandboxPool()
