"""SSH PTY backend: run a child in a remote PTY over a pooled, host-key-checked paramiko connection.

Flow: ``SshConnectionPool.connect`` (known_hosts check → auth) → session channel with a PTY → a small
``/bin/sh`` wrapper ``cd``s, reports its pid on a marker line and ``exec``s the command → ``SshProcess``
streams output; signals and kills reach the remote process group over a second exec channel.
"""

from __future__ import annotations

import contextlib
import getpass
import io
import logging
import os
import re
import select
import shlex
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import paramiko
from paramiko.common import MSG_CHANNEL_REQUEST

from codex_orchestrator.exec.backend import DEFAULT_KILL_GRACE_S, PINNED_ENV, SpawnRequest
from codex_orchestrator.exec.errors import (
    ConnectionLost,
    ExecError,
    HostKeyError,
    SpawnError,
    SshConnectError,
)

log = logging.getLogger(__name__)


class _DropTransportTracebacks(logging.Filter):
    """paramiko's transport thread logs each failure it dies of at ERROR, traceback included, before the
    caller sees the same exception; ``_connect_errors``/``_channel_errors`` turn that into one clear error,
    so the thread's copy is noise (a raw traceback on a user's terminal). Other records pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


logging.getLogger("paramiko.transport").addFilter(_DropTransportTracebacks())

DEFAULT_SSH_PORT = 22
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
READ_CHUNK_BYTES = 65536
# How long a signal/kill command on the second channel may take before we stop waiting for it.
CONTROL_TIMEOUT_S = 10.0
# After SIGKILL the exit status normally arrives within a round trip; this only bounds a stuck server.
EXIT_AFTER_KILL_WAIT_S = 5.0
# Exit code reported when the remote process ended without an exit status or a recognisable signal.
UNKNOWN_EXIT_CODE = 255
SIGNAL_EXIT_BASE = 128
# The wrapper prints this before exec'ing the command; spawn() strips the line from the output.
PID_MARKER = b"__codex_remote_pid__="
_PID_LINE = re.compile(re.escape(PID_MARKER) + rb"(\d+)\r?\n")
_KNOWN_HOSTS_LOCK = threading.Lock()


@dataclass(frozen=True)
class SshTarget:
    """Where and how to connect. ``key_data`` is PEM private-key text; it never appears in ``repr``."""

    host: str
    port: int = DEFAULT_SSH_PORT
    user: str | None = None
    key_file: str | None = None
    key_data: str | None = field(default=None, repr=False)
    use_agent: bool = True
    known_hosts: str | None = None
    trust_on_first_use: bool = False
    connect_timeout_s: float = 10.0
    keepalive_s: float = 5.0
    # A sandbox wrapper available on that host (data for the gate; the backend runs argv as given).
    sandbox_command: tuple[str, ...] = ()

    @property
    def effective_user(self) -> str:
        """The login user: ``user`` or, like OpenSSH, the local user name."""
        return self.user or getpass.getuser()

    @property
    def known_hosts_path(self) -> str:
        return os.path.expanduser(self.known_hosts or DEFAULT_KNOWN_HOSTS)

    @property
    def known_hosts_name(self) -> str:
        """The host as known_hosts names it: ``host``, or ``[host]:port`` off port 22."""
        return self.host if self.port == DEFAULT_SSH_PORT else f"[{self.host}]:{self.port}"

    @property
    def label(self) -> str:
        """``user@host:port``, used in errors and logs."""
        return f"{self.effective_user}@{self.host}:{self.port}"


def parse_ssh_destination(destination: str) -> SshTarget:
    """Parse ``[ssh://][user@]host[:port]`` (IPv6 hosts in brackets: ``[::1]:2222``) into an ``SshTarget``."""

    def bad(problem: str) -> ValueError:
        return ValueError(f"SSH destination {destination!r}: {problem} (expected [user@]host[:port])")

    rest = destination.strip().removeprefix("ssh://")
    user: str | None = None
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
        if not user:
            raise bad("empty user before '@'")
    port_text: str | None = None
    if rest.startswith("["):
        host, bracket, after = rest[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise bad("malformed [host], write [::1] or [::1]:2222")
        port_text = after[1:] if after else None
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
    else:
        host = rest  # no port, or a bare IPv6 address
    if not host or any(ch.isspace() for ch in host) or "/" in host:
        raise bad("missing or invalid host")
    if port_text is not None and (not port_text.isdigit() or not 1 <= int(port_text) <= 65535):
        raise bad("port must be a number from 1 to 65535")
    return SshTarget(host=host, port=int(port_text) if port_text else DEFAULT_SSH_PORT, user=user)


@dataclass(frozen=True)
class SshConnection:
    """A live, authenticated connection. ``newly_trusted``: TOFU recorded the host key when it was opened."""

    transport: paramiko.Transport
    host_fingerprint: str
    newly_trusted: bool


class SshConnectionPool:
    """One authenticated transport per (host, port, user), shared by every spawn; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, int, str], _Slot] = {}

    def connect(self, target: SshTarget) -> SshConnection:
        """The pooled connection for ``target``, opening a new one when there is none or it died."""
        key = (target.host, target.port, target.effective_user)
        with self._lock:
            slot = self._slots.setdefault(key, _Slot())
        # Per-host locks: different hosts connect in parallel; two spawns to one host share one connect.
        with slot.lock:
            if slot.connection is not None and slot.connection.transport.is_active():
                return slot.connection
            if slot.client is not None:
                slot.client.close()  # its transport died: replace it
                slot.client, slot.connection = None, None
            slot.client, slot.connection = _open_connection(target)
            return slot.connection

    def discard(self, target: SshTarget, connection: SshConnection) -> None:
        """Drop ``connection`` (if still pooled) so the next ``connect`` opens a fresh one."""
        key = (target.host, target.port, target.effective_user)
        with self._lock:
            slot = self._slots.get(key)
        if slot is None:
            return
        with slot.lock:
            if slot.connection is connection and slot.client is not None:
                slot.client.close()
                slot.client, slot.connection = None, None

    def close_all(self) -> None:
        """Close every pooled connection; running remote processes get their terminal's hangup."""
        with self._lock:
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            with slot.lock:
                if slot.client is not None:
                    slot.client.close()
                slot.client, slot.connection = None, None


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


# --- connecting -------------------------------------------------------------------------------------------


@dataclass
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: paramiko.SSHClient | None = None
    connection: SshConnection | None = None


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown host keys, or with trust-on-first-use append them to known_hosts.

    Changed keys never reach this policy: paramiko raises ``BadHostKeyException`` first, so they are refused
    even with TOFU.
    """

    def __init__(self, target: SshTarget) -> None:
        self._target = target
        self.trusted_now = False

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        path = self._target.known_hosts_path
        if not self._target.trust_on_first_use:
            raise HostKeyError(hostname, key.fingerprint, changed=False, known_hosts=path)
        _append_known_host(path, hostname, key)
        self.trusted_now = True
        log.warning(
            "trusting %s on first use: recorded %s host key %s in %s",
            hostname,
            key.get_name(),
            key.fingerprint,
            path,
        )


def _open_connection(target: SshTarget) -> tuple[paramiko.SSHClient, SshConnection]:
    """Verify the host key and authenticate; a failed attempt leaves nothing open."""
    client = paramiko.SSHClient()
    policy = _HostKeyPolicy(target)
    client.set_missing_host_key_policy(policy)
    try:
        with _connect_errors(target, client):
            _load_known_hosts(client, target)
            pkey = _load_private_key(target) if target.key_data else None
            key_file = os.path.expanduser(target.key_file) if target.key_file else None
            if key_file and not os.path.isfile(key_file):
                raise SshConnectError(target.label, f"key file {key_file} does not exist", retryable=False)
            client.connect(
                hostname=target.host,
                port=target.port,
                username=target.effective_user,
                pkey=pkey,
                key_filename=key_file,
                timeout=target.connect_timeout_s,
                banner_timeout=target.connect_timeout_s,
                auth_timeout=target.connect_timeout_s,
                channel_timeout=target.connect_timeout_s,
                allow_agent=target.use_agent,
                # Like ``ssh -i``, an explicit key is the identity; ~/.ssh/id_* are tried only without one.
                look_for_keys=not (key_file or target.key_data),
                transport_factory=_exit_signal_transport,
            )
            transport = client.get_transport()
            if transport is None:  # pragma: no cover - connect() either sets it or raises
                raise SshConnectError(target.label, "no transport after connect")
            if target.keepalive_s > 0:
                transport.set_keepalive(max(1, round(target.keepalive_s)))
            fingerprint = transport.get_remote_server_key().fingerprint
    except BaseException:
        client.close()
        raise
    return client, SshConnection(transport, fingerprint, newly_trusted=policy.trusted_now)


@contextlib.contextmanager
def _connect_errors(target: SshTarget, client: paramiko.SSHClient | None = None) -> Iterator[None]:
    """The boundary for connecting: paramiko and socket errors become ``HostKeyError``/``SshConnectError``."""
    try:
        yield
    except paramiko.BadHostKeyException as exc:
        raise HostKeyError(
            target.known_hosts_name, exc.key.fingerprint, changed=True, known_hosts=target.known_hosts_path
        ) from exc
    except paramiko.AuthenticationException as exc:
        raise SshConnectError(target.label, _auth_failure(target, exc), retryable=False) from exc
    except paramiko.SSHException as exc:
        # The transport thread may have died first (no banner in time) and the caller then sees only the
        # follow-up "No existing session": report what killed the transport.
        cause = _transport_failure(client) or exc
        if _handshake_unfinished(client):
            # paramiko's start_client() gives up waiting at its timeout without raising; the next call then
            # fails with "No existing session", which says nothing about the listener that never spoke.
            cause = paramiko.SSHException("Error reading SSH protocol banner")
        # With no key, agent or default identity, paramiko has nothing to offer: retrying cannot help.
        retryable = "No authentication methods available" not in str(cause)
        raise SshConnectError(
            target.label, connect_failure_detail(target, cause), retryable=retryable
        ) from exc
    except (OSError, EOFError) as exc:
        retryable = not isinstance(exc, socket.gaierror)
        raise SshConnectError(target.label, connect_failure_detail(target, exc), retryable=retryable) from exc


def connect_failure_detail(target: SshTarget, exc: BaseException) -> str:
    """What went wrong while connecting, said for a person: no raw errno, and what to check next."""
    where = f"{target.host}:{target.port}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host name {target.host!r} ({exc.strerror or exc}); check the spelling or DNS"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        reasons = {getattr(err, "strerror", None) or str(err) for err in exc.errors.values()}
        return (
            f"nothing accepts connections on {where} ({'; '.join(sorted(reasons))}); "
            "is sshd running there and is the port right?"
        )
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused on {where}; is sshd running there and is the port right?"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer from {where} within {target.connect_timeout_s:g}s (a firewall, or the wrong host?)"
    text = str(exc) or type(exc).__name__
    if "protocol banner" in text:
        return (
            f"{where} accepted the connection but did not complete an SSH handshake within "
            f"{target.connect_timeout_s:g}s (no SSH protocol banner); is this an SSH port?"
        )
    return text


def _auth_failure(target: SshTarget, exc: paramiko.AuthenticationException) -> str:
    offered = f"key {target.key_file}" if target.key_file else "the keys offered (agent, ~/.ssh/id_*)"
    return (
        f"authentication failed: {target.effective_user}@{target.host} refused {offered}; "
        f"check --identity-file, the user name and the remote authorized_keys ({exc})"
    )


def _handshake_unfinished(client: paramiko.SSHClient | None) -> bool:
    transport = client.get_transport() if client is not None else None
    return transport is not None and not getattr(transport, "initial_kex_done", True)


def _transport_failure(client: paramiko.SSHClient | None) -> BaseException | None:
    transport = client.get_transport() if client is not None else None
    saved = getattr(transport, "saved_exception", None) if transport is not None else None
    return saved if isinstance(saved, BaseException) else None


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


def _load_known_hosts(client: paramiko.SSHClient, target: SshTarget) -> None:
    path = target.known_hosts_path
    if not os.path.exists(path):
        return  # every host is unknown: refused, or recorded with TOFU
    try:
        client.get_host_keys().load(path)
    except (OSError, ValueError) as exc:
        raise SshConnectError(
            target.label, f"cannot read known_hosts {path}: {exc}", retryable=False
        ) from exc


def _load_private_key(target: SshTarget) -> paramiko.PKey:
    """Parse ``key_data``; the error never quotes the key."""
    key_classes: tuple[type[paramiko.PKey], ...] = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)
    for key_class in key_classes:
        try:
            return key_class.from_private_key(io.StringIO(target.key_data or ""))
        except (paramiko.SSHException, ValueError, IndexError):
            continue
    raise SshConnectError(
        target.label, "key_data is not an unencrypted Ed25519, ECDSA or RSA private key", retryable=False
    )


def _append_known_host(path: str, hostname: str, key: paramiko.PKey) -> None:
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    with _KNOWN_HOSTS_LOCK, open(path, "a+b") as known_hosts:
        # Appending to a file whose last line lacks its newline would corrupt that entry.
        size = known_hosts.seek(0, os.SEEK_END)
        needs_newline = False
        if size:
            known_hosts.seek(size - 1)
            needs_newline = known_hosts.read(1) != b"\n"
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        known_hosts.write((b"\n" if needs_newline else b"") + line.encode())


def _handle_channel_request(channel: paramiko.Channel, message: paramiko.Message) -> None:
    """paramiko ignores ``exit-signal`` (RFC 4254 §6.10); record it as the shell would: 128 + N."""
    start = message.packet.tell()
    if message.get_text() == "exit-signal":
        message.get_boolean()  # want-reply: always false for exit-signal
        channel.exit_status = _signal_exit_code(message.get_text())
        channel.status_event.set()
        return
    message.packet.seek(start)
    _PARAMIKO_HANDLE_REQUEST(channel, message)


# paramiko's own handler, typed here because the stubs omit private members.
_PARAMIKO_HANDLE_REQUEST: Callable[[paramiko.Channel, paramiko.Message], None] = (
    paramiko.Channel._handle_request  # type: ignore[attr-defined]
)


class _ExitSignalTransport(paramiko.Transport):
    """A Transport whose channels understand ``exit-signal``, so a remote signal death maps to 128 + N."""

    _channel_handler_table: Mapping[int, Any] = {
        **getattr(paramiko.Transport, "_channel_handler_table", {}),
        MSG_CHANNEL_REQUEST: _handle_channel_request,
    }


def _exit_signal_transport(sock: Any, **options: Any) -> paramiko.Transport:
    return _ExitSignalTransport(sock, **options)


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


def _signal_exit_code(signal_name: str) -> int:
    try:
        return SIGNAL_EXIT_BASE + signal.Signals[f"SIG{signal_name}"].value
    except KeyError:
        return UNKNOWN_EXIT_CODE


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
