"""SSH PTY backend: run a child in a remote PTY over a pooled, host-key-checked paramiko connection.

Flow: ``SshConnectionPool.connect`` (``ssh_connect.py``: host key, auth) → session channel with a PTY → a small
``/bin/sh`` wrapper ``cd``s, reports its pid on a marker line and ``exec``s the command → ``SshProcess``
streams output; signals and kills reach the remote process group over a second exec channel.
"""

from __future__ import annotations

import contextlib
import logging
import re
import select
import shlex
import signal
import time
from collections.abc import Iterator

import paramiko

from codex_orchestrator.exec.backend import DEFAULT_KILL_GRACE_S, PINNED_ENV, SpawnRequest
from codex_orchestrator.exec.errors import (
    ConnectionLost,
    ExecError,
    SpawnError,
    SshConnectError,
)
from codex_orchestrator.exec.ssh_connect import DEFAULT_SSH_PORT as DEFAULT_SSH_PORT
from codex_orchestrator.exec.ssh_connect import UNKNOWN_EXIT_CODE as UNKNOWN_EXIT_CODE
from codex_orchestrator.exec.ssh_connect import SshConnection as SshConnection
from codex_orchestrator.exec.ssh_connect import SshConnectionPool as SshConnectionPool
from codex_orchestrator.exec.ssh_connect import SshTarget as SshTarget
from codex_orchestrator.exec.ssh_connect import connect_failure_detail as connect_failure_detail
from codex_orchestrator.exec.ssh_connect import parse_ssh_destination as parse_ssh_destination

log = logging.getLogger(__name__)


READ_CHUNK_BYTES = 65536
# How long a signal/kill command on the second channel may take before we stop waiting for it.
CONTROL_TIMEOUT_S = 10.0
# After SIGKILL the exit status normally arrives within a round trip; this only bounds a stuck server.
EXIT_AFTER_KILL_WAIT_S = 5.0
# The wrapper prints this before exec'ing the command; spawn() strips the line from the output.
PID_MARKER = b"__codex_remote_pid__="
_PID_LINE = re.compile(re.escape(PID_MARKER) + rb"(\d+)\r?\n")


class SshBackend:
    """``ExecBackend`` running children in PTYs on ``target``; ``name`` is ``ssh://user@host:port``."""

    def __init__(self, target: SshTarget, pool: SshConnectionPool | None = None) -> None:
        self.target = target
        self._owns_pool = pool is None
        self._pool = pool if pool is not None else SshConnectionPool()
        self._fingerprint: str | None = None

    @property
    def name(self) -> str:
        return f"ssh://{self.target.label}"

    @property
    def host_fingerprint(self) -> str | None:
        """SHA256 fingerprint of the host key seen on the last connect (None before the first)."""
        return self._fingerprint

    def connect(self) -> SshConnection:
        """Connect (or reuse the pooled connection) and record the host fingerprint."""
        connection = self._pool.connect(self.target)
        self._fingerprint = connection.host_fingerprint
        return connection

    def spawn(self, request: SpawnRequest) -> SshProcess:
        # 1. A channel on the pooled transport; a transport that died unnoticed is replaced once, since
        #    nothing has run remotely yet.
        command = build_remote_command(request)
        channel, connection = self._open_channel(request)
        # 2. PTY + command; 3. wait for the wrapper's pid line (or its failure, e.g. a missing cwd).
        try:
            with _channel_errors(self.target, connection.transport, request.argv):
                channel.get_pty(term=_child_env(request)["TERM"], width=request.cols, height=request.rows)
                channel.exec_command(command)
                pid, pending = _await_pid_line(channel, request, self.target)
        except ExecError:
            channel.close()
            raise
        return SshProcess(channel, connection.transport, self.target, pid=pid, pending=pending)

    def close(self) -> None:
        """Close the connection pool if this backend created it."""
        if self._owns_pool:
            self._pool.close_all()

    def _open_channel(self, request: SpawnRequest) -> tuple[paramiko.Channel, SshConnection]:
        for attempt in (1, 2):
            connection = self.connect()
            try:
                with _channel_errors(self.target, connection.transport, request.argv):
                    channel = connection.transport.open_session(timeout=self.target.connect_timeout_s)
                return channel, connection
            except ConnectionLost as exc:
                self._pool.discard(self.target, connection)
                if attempt == 2:
                    raise SshConnectError(
                        self.target.label, f"connection dropped twice: {exc.detail}"
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


class SshProcess:
    """A remote child in a PTY. Its pid is also its process group and session id (sshd calls setsid)."""

    def __init__(
        self,
        channel: paramiko.Channel,
        transport: paramiko.Transport,
        target: SshTarget,
        *,
        pid: int,
        pending: bytes = b"",
    ) -> None:
        self._channel = channel
        self._transport = transport
        self._target = target
        self._pid = pid
        self._pending = pending
        self._closed = False
        self._swept = False

    @property
    def pid(self) -> int | None:
        return self._pid

    def read(self, timeout_s: float) -> bytes | None:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        if self._closed:
            return b""
        # select() rather than settimeout(): a channel timeout would also apply to writes from other threads.
        ready, _, _ = select.select([self._channel], [], [], max(timeout_s, 0.0))
        if not ready:
            return None
        data = self._channel.recv(READ_CHUNK_BYTES)
        if data:
            return data
        if self._connection_lost():
            raise ConnectionLost(self._target.label, "the connection closed while the command was running")
        return b""

    def write(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            self._channel.sendall(data)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if self._connection_lost():
                raise ConnectionLost(self._target.label, f"write failed: {exc}") from exc
            # Otherwise the child has exited and its terminal is gone; poll() reports the exit.

    def resize(self, rows: int, cols: int) -> None:
        if self._closed or self._channel.closed:
            return
        with _channel_errors(self._target, self._transport):
            self._channel.resize_pty(width=cols, height=rows)

    def signal(self, signum: int) -> None:
        self._control(_group_signal_command(signum, self._pid, whole_session=False))

    def poll(self) -> int | None:
        if not self._channel.exit_status_ready():
            return None
        return self._exit_code()

    def wait(self, timeout_s: float | None = None) -> int | None:
        if not self._channel.status_event.wait(timeout_s):
            return None
        return self._exit_code()

    def terminate_tree(self, grace_s: float = DEFAULT_KILL_GRACE_S) -> int | None:
        # 1. SIGTERM to the group and session, 2. grace period, 3. SIGKILL sweep of the session (it also
        #    catches children that outlived the leader), 4. wait for sshd to report the exit.
        code = self.poll()
        if code is None:
            self._control(_group_signal_command(signal.SIGTERM, self._pid, whole_session=True))
            code = self.wait(grace_s)
        if not self._swept:
            self._swept = True
            self._control(_group_signal_command(signal.SIGKILL, self._pid, whole_session=True))
        if code is None:
            code = self.wait(EXIT_AFTER_KILL_WAIT_S)
        return code

    def close(self) -> None:
        if self._closed:
            return
        try:
            if self.poll() is None:
                self.terminate_tree()
        except ExecError as exc:
            # The host is unreachable: sshd hangs up the remote terminal once it notices the dead connection.
            log.warning("could not end remote process %s on %s: %s", self._pid, self._target.label, exc)
        finally:
            self._closed = True
            self._channel.close()

    def _exit_code(self) -> int:
        status = self._channel.exit_status
        if status >= 0:
            return status
        if self._connection_lost():
            raise ConnectionLost(
                self._target.label, "the connection closed before the command's exit status arrived"
            )
        return UNKNOWN_EXIT_CODE

    def _connection_lost(self) -> bool:
        # A clean end sends exit status and EOF before the close; a dropped connection sends neither.
        if self._closed or self._channel.exit_status >= 0:
            return False
        return not self._channel.eof_received or not self._transport.is_active()

    def _control(self, command: str) -> None:
        """Run a short command on a second channel of the same connection (signals, kills)."""
        with _channel_errors(self._target, self._transport):
            channel = self._transport.open_session(timeout=CONTROL_TIMEOUT_S)
            try:
                channel.exec_command(command)
                channel.status_event.wait(CONTROL_TIMEOUT_S)
            finally:
                channel.close()


@contextlib.contextmanager
def _channel_errors(
    target: SshTarget, transport: paramiko.Transport, argv: tuple[str, ...] | None = None
) -> Iterator[None]:
    """The boundary for channel operations: the connection died (``ConnectionLost``) or the server refused
    the request (``SpawnError`` while spawning ``argv``, else ``SshConnectError``)."""
    try:
        yield
    except (paramiko.SSHException, OSError, EOFError) as exc:
        detail = str(exc) or type(exc).__name__
        # Socket-level errors mean the connection is gone even if the transport thread has not noticed yet.
        if not transport.is_active() or isinstance(exc, (OSError, EOFError)):
            raise ConnectionLost(target.label, detail) from exc
        if argv is not None:
            raise SpawnError(argv, f"{target.label} refused the request: {detail}") from exc
        raise SshConnectError(target.label, f"the server refused a channel request: {detail}") from exc


# --- remote commands (pure) ---------------------------------------------------------------------------------


def build_remote_command(request: SpawnRequest) -> str:
    """The command line for sshd: ``/bin/sh`` (whatever the login shell) cds, prints its pid, execs argv."""
    if not request.argv:
        raise SpawnError(request.argv, "empty argv")
    env = _child_env(request)
    for name, value in env.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise SpawnError(request.argv, f"invalid environment entry {name!r}")
    if any("\0" in arg for arg in request.argv):
        raise SpawnError(request.argv, "argv contains a NUL byte")
    lines = []
    if request.cwd:
        lines.append(f"cd -- {shlex.quote(request.cwd)} || exit 1")
    lines.append(f"printf '{PID_MARKER.decode()}%s\\n' \"$$\"")
    # Variables go through env(1) on the command line: sshd's AcceptEnv usually refuses ``env`` requests.
    assignments = " ".join(shlex.quote(f"{name}={value}") for name, value in env.items())
    lines.append(f"exec env {assignments} {shlex.join(request.argv)}")
    return "exec /bin/sh -c " + shlex.quote("\n".join(lines))


def _child_env(request: SpawnRequest) -> dict[str, str]:
    return {**PINNED_ENV, **request.env}


def _group_signal_command(signum: int, pgid: int, *, whole_session: bool) -> str:
    """Shell command sending ``signum`` to process group ``pgid`` (and optionally to its whole session).

    Signal names, not numbers: numbering differs between remote platforms. The remote command leads its
    own session, so pgid == sid; ``pkill -s`` reaches jobs a shell moved into other groups of that session.
    """
    name = signal.Signals(signum).name.removeprefix("SIG")
    script = f"kill -s {name} -- -{pgid} 2>/dev/null"
    if whole_session:
        script += f"; command -v pkill >/dev/null 2>&1 && pkill -{name} -s {pgid}"
    return "exec /bin/sh -c " + shlex.quote(script + "; exit 0")


def _await_pid_line(channel: paramiko.Channel, request: SpawnRequest, target: SshTarget) -> tuple[int, bytes]:
    """Read up to the wrapper's pid line; returns (pid, the output around it). Fails if the wrapper exits."""
    output = b""
    timeout_s = target.connect_timeout_s
    deadline = time.monotonic() + timeout_s
    while True:
        match = _PID_LINE.search(output)
        if match:
            return int(match.group(1)), output[: match.start()] + output[match.end() :]
        ready, _, _ = select.select([channel], [], [], max(deadline - time.monotonic(), 0.0))
        if not ready:
            raise SpawnError(
                request.argv, f"the remote shell on {target.label} did not start within {timeout_s}s"
            )
        chunk = channel.recv(READ_CHUNK_BYTES)
        if not chunk:
            if channel.exit_status < 0 and not channel.eof_received:
                raise ConnectionLost(target.label, "the connection closed while starting the command")
            detail = output.decode(errors="replace").strip() or f"exit status {channel.recv_exit_status()}"
            raise SpawnError(request.argv, f"remote start failed on {target.label}: {detail}")
        output += chunk
