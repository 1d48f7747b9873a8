"""The launcher that runs inside a kept-alive bubblewrap sandbox, and the call init that runs each tool call.

Stdlib only, run as ``python -I -S launcher_main.py FD`` inside bwrap: FD is a SOCK_SEQPACKET socket to the
orchestrator. Ahead of any call the launcher prepares a *call init*: pid 1 of a pid namespace of its own,
in a mount namespace of its own with its own ``/proc`` (so it sees only its own processes), every capability
dropped and no_new_privs set, blocked waiting for one call. It hands the init's control socket to the
orchestrator (SCM_RIGHTS, ``spare``). Per call, then, the orchestrator and the init talk directly: ``spawn``
(argv, cwd, env, PTY size, with the PTY slave attached) → the init forks the command as a session leader on
the PTY and answers ``spawned`` (or the exec error); ``signal`` reaches the command's process group, ``term``
every process of the call. The init exits with the command, and the kernel ends whatever the call left in
its namespace. The launcher is the inits' parent (a subreaper): it reports each init's ``exit``, kills one on
``kill`` and prepares another on ``prepare``, beside whatever runs. An init serves exactly one call. The
launcher exits when the orchestrator's end of the socket closes, and with it the sandbox (bwrap is its init).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import json
import os
import select
import signal
import socket
import struct
import sys
import termios
from typing import Any

MAX_MESSAGE_BYTES = 1 << 20
CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
PR_SET_CHILD_SUBREAPER = 36
_SIGNAL_EXIT_BASE = 128
_LIBC = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def send_message(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def _recv(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE_BYTES, 4)
    if not data:
        return None, fds
    return json.loads(data), fds


def _status_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return _SIGNAL_EXIT_BASE + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


# -- the call init: pid 1 of the call's own pid namespace -----------------------------------------------------


def _last_capability() -> int:
    with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as handle:
        return int(handle.read())


# Read once by the launcher: every init it forks inherits it instead of opening /proc again.
_LAST_CAP = _last_capability()


def _drop_capabilities() -> None:
    """What ``bwrap --cap-drop ALL`` gives a call of its own, for a call of the kept sandbox.

    The launcher keeps its capabilities (it needs CAP_SYS_ADMIN to give each call a pid namespace and a
    /proc); a call must have none, or as root it could remount the read-only system writable. Bounding set,
    ambient set, then effective/permitted/inheritable emptied, and no_new_privs so nothing regains them.
    """
    for cap in range(_LAST_CAP + 1):
        _check(_LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"dropping capability {cap}")
    _check(_LIBC.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clearing ambient capabilities")
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable} words, all zero
    _check(_LIBC.capset(header, data), "dropping capabilities")
    _check(_LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "setting no_new_privs")


def _call_init(control: socket.socket) -> None:
    """Wait for this call's ``spawn``, start the command, relay signals, exit with the command's code.

    Everything that isolates the call happens before the ``spawn`` is even read: nothing of the call runs
    until its namespace has its own /proc and no capabilities are left."""
    # Our own /proc: the namespace's view, so the call sees only its own processes.
    _check(_LIBC.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "making / private")
    _check(_LIBC.mount(b"proc", b"/proc", b"proc", 0, None), "mounting /proc")
    _drop_capabilities()
    message, fds = _recv(control)
    if message is None or message.get("op") != "spawn" or len(fds) != 1:
        os._exit(0)  # the orchestrator is going away (or sent nonsense): nothing to run
    slave = fds[0]
    _link_tmp_entries(message.get("tmp", []))
    child = _start_command(control, message, slave)
    os.close(slave)
    if child is None:
        os._exit(_SIGNAL_EXIT_BASE - 1)
    # Wait for the command to end, relaying the orchestrator's orders meanwhile. As the namespace's init we exit
    # with the command: the kernel then ends whatever it left behind.
    pidfd = os.pidfd_open(child)
    while True:
        ready, _, _ = select.select([control.fileno(), pidfd], [], [])
        if pidfd in ready:
            _, status = os.waitpid(child, 0)
            code = _status_code(status) & 0xFF
            _end_namespace()
            # Only now, with nothing of the call left, does the orchestrator hear of its end (the launcher
            # reports the same when it reaps us; the first report counts).
            with contextlib.suppress(OSError):
                send_message(control, {"op": "exit", "code": code})
            os._exit(code)
        if control.fileno() in ready:
            try:
                order, _ = _recv(control)
            except OSError:
                order = None
            if order is None:  # the orchestrator let go of the call: end it (the namespace goes with us)
                os._exit(_SIGNAL_EXIT_BASE + signal.SIGKILL)
            _relay(order, child)


def _end_namespace() -> None:
    """Kill and reap every process left in the call's pid namespace (as its init, all are our descendants,
    and orphans are re-parented to us: no child left means nothing of the call is left)."""
    while True:
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _relay(order: dict[str, Any], child: int) -> None:
    signums = [int(s) for s in order.get("signals", [])]
    for signum in signums:
        with contextlib.suppress(ProcessLookupError):
            if order.get("op") == "signal":
                os.killpg(child, signum)  # the command's process group, as a terminal would
            else:
                os.kill(-1, signum)  # from a namespace's init: every process of the call but us


# Signals the command starts with at their defaults (Python ignores SIGPIPE and SIGXFSZ; the rest may carry
# the launcher's handlers), as ``subprocess`` restores them for an unsandboxed call.
_DEFAULT_SIGNALS = (
    signal.SIGPIPE,
    signal.SIGXFSZ,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGHUP,
)


def _start_command(control: socket.socket, message: dict[str, Any], slave: int) -> int | None:
    """Start the command as a session leader with ``slave`` as its controlling terminal; report how it went.

    ``posix_spawn`` (a vfork: no copy of this interpreter's pages, which a forked Python child would fault in
    one by one) does it all before the exec: ``setsid``, then opening the slave again through /proc, which
    makes it the new session's controlling terminal, on fds 0-2. The init serves one call, so it may take on
    the call's working directory and PATH itself (``posix_spawnp`` looks the program up in the caller's)."""
    rows, cols = int(message.get("rows", 24)), int(message.get("cols", 80))
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    argv, env = list(message["argv"]), dict(message["env"])
    try:
        os.chdir(message["cwd"])
    except OSError as exc:
        _failed(control, f"working directory {message['cwd']!r}: {exc.strerror}")
        return None
    os.environ.clear()
    os.environ.update({"PATH": env["PATH"]} if "PATH" in env else {})
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, f"/proc/self/fd/{slave}", os.O_RDWR, 0),
        (os.POSIX_SPAWN_DUP2, 0, 1),
        (os.POSIX_SPAWN_DUP2, 0, 2),
        (os.POSIX_SPAWN_CLOSE, slave),
    ]
    try:
        pid = os.posix_spawnp(
            argv[0], argv, env, file_actions=actions, setsid=True, setsigdef=_DEFAULT_SIGNALS, setsigmask=()
        )
    except OSError as exc:
        _failed(control, f"{exc.strerror}: {argv[0]!r}")
        return None
    send_message(control, {"op": "spawned", "pid": pid})
    return pid


def _failed(control: socket.socket, detail: str) -> None:
    """The command could not be started; ``detail`` says why, as ``LocalPtyBackend`` would."""
    send_message(control, {"op": "error", "detail": detail})


# -- the launcher ---------------------------------------------------------------------------------------------


# Where bwrap shows the host's /tmp (read-only) inside the sandbox's private /tmp (sandbox.wrap_argv).
HOST_TMP = "/tmp/.host-tmp"


def _link_tmp_entries(names: list[str]) -> None:
    """Show host /tmp entries that appeared since the sandbox started, as bwrap shows the first ones: a
    symlink into the read-only bind of the host's /tmp. A name a call already uses in /tmp is left alone."""
    if not os.path.isdir(HOST_TMP):
        return  # the sandbox started with nothing of the host's /tmp to show
    for name in names:
        if "/" in name or name in (".", "..", ".host-tmp"):
            continue
        with contextlib.suppress(OSError):  # exists already (ours or the call's), or /tmp is full
            os.symlink(f"{HOST_TMP}/{name}", f"/tmp/{name}")


def _close_fds_but(*keep: int) -> None:
    """A call init holds only its own control socket (and stdio): never another call's."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):  # the directory listing's own descriptor
                os.close(fd)


class _Launcher:
    """The launcher's state: prepared inits by spare id, and which init pid is which spare."""

    def __init__(self, orchestrator: socket.socket) -> None:
        self.orchestrator = orchestrator
        self.own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.inits: dict[int, int] = {}  # spare id -> init pid (in our namespace)
        self.ids: dict[int, int] = {}  # init pid -> spare id
        self.last_id = 0

    def prepare(self) -> None:
        """Fork the next call's init and hand its control socket to the orchestrator (we keep no copy)."""
        spare_id, control = self.fork_init()
        send_message(self.orchestrator, {"op": "spare", "id": spare_id}, [control.fileno()])
        control.close()

    def fork_init(self) -> tuple[int, socket.socket]:
        """Fork a call init into a pid namespace of its own: its spare id and our end of its socket.

        The launcher only unshares the pid namespace for its next child, forks, and takes its own back
        (``setns``): no intermediate process. The init makes its mount namespace, /proc and capability drop
        itself, beside whatever runs; a spawn sent meanwhile waits in its socket until it is done."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            _check(_LIBC.unshare(CLONE_NEWPID), "unsharing the pid namespace")
        except OSError:
            ours.close()
            theirs.close()
            raise
        pid = -1
        try:
            pid = os.fork()
            if pid == 0:
                try:
                    _close_fds_but(theirs.fileno())
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    _check(_LIBC.unshare(CLONE_NEWNS), "unsharing the mount namespace")
                    _call_init(theirs)
                finally:
                    os._exit(_SIGNAL_EXIT_BASE - 1)  # the init failed: its call (if any) did not run
        finally:
            if pid != 0:
                _check(
                    _LIBC.setns(self.own_pid_ns, CLONE_NEWPID), "returning to the launcher's pid namespace"
                )
            theirs.close()
        self.last_id += 1
        self.inits[self.last_id], self.ids[pid] = pid, self.last_id
        return self.last_id, ours

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            spare_id = self.ids.pop(pid, None)
            if spare_id is None:
                continue  # an orphan re-parented to us (we are a subreaper)
            del self.inits[spare_id]
            send_message(self.orchestrator, {"op": "exit", "id": spare_id, "code": _status_code(status)})

    def order(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "prepare":
            try:
                self.prepare()
            except OSError as exc:  # out of processes or memory: the asking call fails, the sandbox lives on
                send_message(self.orchestrator, {"op": "unprepared", "detail": str(exc)})
        elif op == "kill":
            pid = self.inits.get(int(message.get("id", 0)))
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)  # the init: its namespace dies with it


def main(fd: int) -> int:
    """Serve the orchestrator on ``fd``: hand over prepared call inits, run its orders, report inits' exits.

    The calls themselves go straight from the orchestrator to their init (``_call_init``) and back: the
    launcher is on no call's path, only on the preparing of the next one and the report of an exit."""
    orchestrator = socket.socket(fileno=fd)
    # Every init is a fork of this interpreter, and each page an init writes to is copied for it: a
    # collection in an init would write to every object's page. The launcher makes next to no garbage.
    gc.disable()
    gc.freeze()
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _check(_LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "becoming a subreaper")
    state = _Launcher(orchestrator)
    reaper_r, reaper_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(reaper_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    try:
        spare_id, control = state.fork_init()  # the first one also tells whether calls can have namespaces
    except OSError as exc:
        send_message(orchestrator, {"op": "unavailable", "detail": str(exc)})
        return 1
    send_message(orchestrator, {"op": "ready", "pid": os.getpid()})
    send_message(orchestrator, {"op": "spare", "id": spare_id}, [control.fileno()])
    control.close()
    while True:
        watched: list[Any] = [orchestrator, reaper_r]
        ready, _, _ = select.select(watched, [], [])
        if reaper_r in ready:
            while True:
                try:
                    os.read(reaper_r, 4096)
                except BlockingIOError:
                    break
            state.reap()
        if orchestrator in ready:
            message, fds = _recv(orchestrator)
            for received in fds:
                os.close(received)
            if message is None:
                return 0  # the orchestrator closed its end: the sandbox ends with us
            state.order(message)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
