"""SSH connections: where to connect (``SshTarget``), the host-key check, authentication, and the pool that
shares one authenticated transport per (host, port, user) between every spawn.

Flow: ``SshConnectionPool.connect`` → known_hosts (refuse unknown keys, or record them with trust-on-first-use;
changed keys are always refused) → key or agent authentication → a transport whose channels understand
``exit-signal``. paramiko and socket errors become ``HostKeyError``/``SshConnectError`` at this boundary.
"""

from __future__ import annotations

import contextlib
import getpass
import io
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import paramiko
from paramiko.common import MSG_CHANNEL_REQUEST

from codex_orchestrator.exec.errors import HostKeyError, SshConnectError

log = logging.getLogger(__name__)

DEFAULT_SSH_PORT = 22
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
# Exit code reported when the remote process ended without an exit status or a recognisable signal.
UNKNOWN_EXIT_CODE = 255
SIGNAL_EXIT_BASE = 128
_KNOWN_HOSTS_LOCK = threading.Lock()


class _DropTransportTracebacks(logging.Filter):
    """paramiko's transport thread logs each failure it dies of at ERROR, traceback included, before the
    caller sees the same exception; ``_connect_errors``/``ssh._channel_errors`` turn that into one clear error,
    so the thread's copy is noise (a raw traceback on a user's terminal). Other records pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


logging.getLogger("paramiko.transport").addFilter(_DropTransportTracebacks())


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


def _signal_exit_code(signal_name: str) -> int:
    try:
        return SIGNAL_EXIT_BASE + signal.Signals[f"SIG{signal_name}"].value
    except KeyError:
        return UNKNOWN_EXIT_CODE
