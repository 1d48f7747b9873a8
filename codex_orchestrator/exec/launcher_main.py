"""The launcher that runs inside a kept-alive bubblewrap sandbox and starts each tool call with a fork.

Stdlib only, run as ``python -I -S launcher_main.py FD`` inside bwrap: FD is a SOCK_SEQPACKET socket to the
orchestrator. Flow at a glance, per call: the orchestrator sends ``spawn`` (argv, cwd, env) with the PTY slave
attached (SCM_RIGHTS) → a pre-forked *call init* takes it: pid 1 of a pid namespace of its own with its own
``/proc``, so one call cannot see or signal another's processes → the init forks the command as a session
leader on the PTY and reports ``spawned`` (or the exec error) → the launcher reports ``exit`` when the init
ends, which is when the command ends; the namespace's other processes die with it (as under a bwrap of its
own). ``signal`` reaches the command's process group, ``term``/``kill`` the whole call. The next call's init
is forked ahead, so a namespace's set-up is not on a call's path. The launcher exits when the orchestrator's
end of the socket closes, and with it the sandbox (bwrap is the sandbox's init).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
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


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
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


def _drop_capabilities() -> None:
    """What ``bwrap --cap-drop ALL`` gives a call of its own, for a call of the kept sandbox.

    The launcher keeps its capabilities (it needs CAP_SYS_ADMIN to give each call a pid namespace and a
    /proc); a call must have none, or as root it could remount the read-only system writable. Bounding set,
    ambient set, then effective/permitted/inheritable emptied, and no_new_privs so nothing regains them.
    """
    with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as handle:
        last = int(handle.read())
    for cap in range(last + 1):
        _check(_LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"dropping capability {cap}")
    _check(_LIBC.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clearing ambient capabilities")
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable} words, all zero
    _check(_LIBC.capset(header, data), "dropping capabilities")
    _check(_LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "setting no_new_privs")


def _call_init(control: socket.socket) -> None:
    """Wait for this call's ``spawn``, start the command, relay signals, exit with the command's code."""
    # Our own /proc: the namespace's view, so the call sees only its own processes.
    _check(_LIBC.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "making / private")
    _check(_LIBC.mount(b"proc", b"/proc", b"proc", 0, None), "mounting /proc")
    _drop_capabilities()
    message, fds = _recv(control)
    if message is None or message.get("op") != "spawn" or len(fds) != 1:
        os._exit(0)  # the launcher is going away (or sent nonsense): nothing to run
    slave = fds[0]
    child = _start_command(control, message, slave)
    os.close(slave)
    if child is None:
        os._exit(_SIGNAL_EXIT_BASE - 1)
    # Wait for the command to end, relaying the launcher's orders meanwhile. As the namespace's init we exit
    # with the command: the kernel then ends whatever it left behind.
    pidfd = os.pidfd_open(child)
    while True:
        ready, _, _ = select.select([control.fileno(), pidfd], [], [])
        if pidfd in ready:
            _, status = os.waitpid(child, 0)
            os._exit(_status_code(status) & 0xFF)
        if control.fileno() in ready:
            try:
                order, _ = _recv(control)
            except OSError:
                order = None
            if order is None:  # the launcher died: end the call (the namespace goes with us)
                os._exit(_SIGNAL_EXIT_BASE + signal.SIGKILL)
            _relay(order, child)


def _relay(order: dict[str, Any], child: int) -> None:
    signums = [int(s) for s in order.get("signals", [])]
    for signum in signums:
        with contextlib.suppress(ProcessLookupError):
            if order.get("op") == "signal":
                os.killpg(child, signum)  # the command's process group, as a terminal would
            else:
                os.kill(-1, signum)  # from a namespace's init: every process of the call but us


class _Failed(Exception):
    """The command could not be started; the message says why, as ``LocalPtyBackend`` would."""


def _start_command(control: socket.socket, message: dict[str, Any], slave: int) -> int | None:
    """Fork the command as a session leader with ``slave`` as its controlling terminal; report how it went."""
    rows, cols = int(message.get("rows", 24)), int(message.get("cols", 80))
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(err_r)
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for target in (0, 1, 2):
                os.dup2(slave, target)
            if slave > 2:
                os.close(slave)
            for signum in (signal.SIGPIPE, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            try:
                os.chdir(message["cwd"])
            except OSError as exc:
                raise _Failed(f"working directory {message['cwd']!r}: {exc.strerror}") from exc
            try:
                os.execvpe(message["argv"][0], message["argv"], message["env"])
            except OSError as exc:
                raise _Failed(f"{exc.strerror}: {message['argv'][0]!r}") from exc
        except _Failed as exc:
            os.write(err_w, json.dumps({"detail": str(exc)}).encode())
        except BaseException as exc:
            os.write(err_w, json.dumps({"detail": repr(exc)}).encode())
        os._exit(127)
    os.close(err_w)
    failure = b""
    while chunk := os.read(err_r, 65536):
        failure += chunk
    os.close(err_r)
    if failure:
        os.waitpid(pid, 0)
        _send(control, {"op": "error", **json.loads(failure)})
        return None
    _send(control, {"op": "spawned", "pid": pid})
    return pid


# -- the launcher ---------------------------------------------------------------------------------------------


class _Spare:
    """A call init forked ahead: its control socket and its pid (in the launcher's namespace)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        report_r, report_w = os.pipe()
        first = os.fork()
        if first == 0:
            try:
                _close_fds_but(theirs.fileno(), report_w)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _check(_LIBC.unshare(CLONE_NEWPID | CLONE_NEWNS), "unshare")
                init = os.fork()
                if init == 0:
                    os.close(report_w)
                    _call_init(theirs)
                os.write(report_w, str(init).encode())
            finally:
                os._exit(0)
        theirs.close()
        os.close(report_w)
        reported = b""
        while chunk := os.read(report_r, 64):
            reported += chunk
        os.close(report_r)
        os.waitpid(first, 0)
        if not reported:
            raise OSError(errno.EPERM, "could not start a call's pid namespace")
        self.pid = int(reported)  # now our child: we are the subreaper
        self.control = ours


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


def main(fd: int) -> int:
    orchestrator = socket.socket(fileno=fd)
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _check(_LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "becoming a subreaper")
    try:
        spare: _Spare | None = _Spare()
    except OSError as exc:
        _send(orchestrator, {"op": "unavailable", "detail": str(exc)})
        return 1
    _send(orchestrator, {"op": "ready", "pid": os.getpid()})
    calls: dict[int, _Spare] = {}  # by the id the orchestrator gave
    ids: dict[int, int] = {}  # init pid -> call id
    reaper_r, reaper_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(reaper_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    while True:
        watched: list[Any] = [orchestrator, reaper_r, *(call.control for call in calls.values())]
        ready, _, _ = select.select(watched, [], [])
        if reaper_r in ready:
            while True:
                try:
                    os.read(reaper_r, 4096)
                except BlockingIOError:
                    break
            _reap(orchestrator, calls, ids)
        for call_id, call in list(calls.items()):
            if call.control in ready:
                try:
                    report, _ = _recv(call.control)
                except OSError:
                    report = None
                if report is not None:
                    _send(orchestrator, {**report, "id": call_id})
        if orchestrator in ready:
            message, fds = _recv(orchestrator)
            if message is None:
                return 0  # the orchestrator closed its end: the sandbox ends with us
            op, call_id = message.get("op"), int(message.get("id", 0))
            if op == "spawn":
                _link_tmp_entries(message.get("tmp", []))
                if spare is None:
                    spare = _Spare()
                calls[call_id], ids[spare.pid] = spare, call_id
                socket.send_fds(spare.control, [json.dumps(message).encode()], fds)
                for received in fds:
                    os.close(received)
                spare = _Spare()  # the next call's namespace, made while this one runs
            elif op in ("signal", "term") and call_id in calls:
                with contextlib.suppress(OSError):  # its init has just ended; the reaper reports it
                    _send(calls[call_id].control, message)
            elif op == "kill" and call_id in calls:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(calls[call_id].pid, signal.SIGKILL)  # the init: its namespace dies with it
            for received in fds if op != "spawn" else ():
                os.close(received)


def _reap(orchestrator: socket.socket, calls: dict[int, _Spare], ids: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        call_id = ids.pop(pid, None)
        if call_id is None:
            continue
        call = calls.pop(call_id)
        # Reports the init sent before it ended (``spawned``, ``error``) come first.
        while True:
            ready, _, _ = select.select([call.control], [], [], 0)
            if not ready:
                break
            try:
                report, _ = _recv(call.control)
            except OSError:
                break
            if report is None:
                break
            _send(orchestrator, {**report, "id": call_id})
        call.control.close()
        _send(orchestrator, {"op": "exit", "id": call_id, "code": _status_code(status)})


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
