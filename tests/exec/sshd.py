"""A real OpenSSH sshd on loopback for tests: throwaway host/client keys, config and known_hosts.

Use the ``sshd_server`` fixture (import it into the test module), ``running_sshd(dir)`` or ``start_sshd``.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from codex_orchestrator.exec.ssh import SshTarget

SSHD_PATH = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"
# sshd refuses to start without its privilege-separation directory.
PRIVSEP_DIR = Path("/run/sshd")
HOST = "127.0.0.1"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0

_CONFIG_TEMPLATE = """\
ListenAddress {host}
Port {port}
HostKey {host_key}
AuthorizedKeysFile {authorized_keys}
PidFile {pid_file}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
MaxSessions 50
LogLevel VERBOSE
"""


def generate_key(path: Path) -> Path:
    """Create an unencrypted ed25519 key pair at ``path`` / ``path.pub``; returns ``path``."""
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "codex-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def public_key_fingerprint(pub_path: Path) -> str:
    """OpenSSH-style ``SHA256:base64nopad`` fingerprint of a ``.pub`` file."""
    blob = base64.b64decode(pub_path.read_text().split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def known_hosts_line(host: str, port: int, pub_path: Path) -> str:
    """A known_hosts line for ``pub_path``, in the ``[host]:port`` form OpenSSH uses off port 22."""
    key_type, key_b64 = pub_path.read_text().split()[:2]
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {key_type} {key_b64}\n"


@dataclass
class SshdServer:
    """One sshd process listening on ``host:port`` that accepts ``client_key`` for ``user``."""

    root: Path
    host: str
    port: int
    user: str
    client_key: Path
    host_key: Path
    known_hosts: Path
    host_fingerprint: str
    config: Path
    log: Path
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def target(self, **overrides: Any) -> SshTarget:
        """An ``SshTarget`` for this server using the test client key and known_hosts (no agent)."""
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "key_file": str(self.client_key),
            "use_agent": False,
            "known_hosts": str(self.known_hosts),
            "connect_timeout_s": 10.0,
        }
        options.update(overrides)
        return SshTarget(**options)

    def start(self) -> None:
        """Start sshd and wait until its port accepts connections."""
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(SSHD_PATH), "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                pytest.fail(f"sshd exited with {self._proc.returncode} at startup:\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"sshd did not accept connections within {START_TIMEOUT_S}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the listener and every sshd process serving a connection, like a host that vanished.

        The users' processes are left alone: they get the hangup of their terminal, as on a real host.
        """
        if self._proc is None:
            return
        for pid in [self._proc.pid, *_descendants(self._proc.pid)]:
            if pid == self._proc.pid or _is_sshd(pid):
                _kill_quietly(pid, signal.SIGKILL)
        self._proc.wait(timeout=STOP_TIMEOUT_S)
        self._proc = None

    def restart(self) -> None:
        """Kill (if running) and start again on the same port with the same keys."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Kill the listener and everything below it (connections and their users' processes)."""
        if self._proc is None:
            return
        for pid in [self._proc.pid, *_descendants(self._proc.pid)]:
            _kill_quietly(pid, signal.SIGKILL)
        self._proc.wait(timeout=STOP_TIMEOUT_S)
        self._proc = None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_sshd(root: Path) -> SshdServer:
    """Write keys and config under ``root`` and start sshd; fails the test if sshd is not installed."""
    if not SSHD_PATH.exists():
        pytest.fail(f"OpenSSH sshd not found at {SSHD_PATH}; run `make test`, which installs openssh-server")
    # Not root: sshd runs without privilege separation and only serves the current user.
    with contextlib.suppress(PermissionError):
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    host_key = generate_key(root / "host_ed25519")
    client_key = generate_key(root / "client_ed25519")
    authorized_keys = root / "authorized_keys"
    authorized_keys.write_text(client_key.with_suffix(".pub").read_text())
    port = _free_port()
    known_hosts = root / "known_hosts"
    known_hosts.write_text(known_hosts_line(HOST, port, host_key.with_suffix(".pub")))
    config = root / "sshd_config"
    config.write_text(
        _CONFIG_TEMPLATE.format(
            host=HOST,
            port=port,
            host_key=host_key,
            authorized_keys=authorized_keys,
            pid_file=root / "sshd.pid",
        )
    )
    server = SshdServer(
        root=root,
        host=HOST,
        port=port,
        user=getpass.getuser(),
        client_key=client_key,
        host_key=host_key,
        known_hosts=known_hosts,
        host_fingerprint=public_key_fingerprint(host_key.with_suffix(".pub")),
        config=config,
        log=root / "sshd.log",
    )
    server.start()
    return server


@contextlib.contextmanager
def running_sshd(root: Path) -> Iterator[SshdServer]:
    """``start_sshd`` for a ``with`` block; sshd and everything it started are killed on exit."""
    server = start_sshd(root)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    """A running sshd for the whole test module; import it into the module that uses it."""
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _parent_pids() -> dict[int, int]:
    """pid → ppid for every process, read from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name may contain spaces and parentheses; the fields after the last ')' are fixed.
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _descendants(pid: int) -> list[int]:
    parents = _parent_pids()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def _is_sshd(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/exe").startswith(str(SSHD_PATH))
    except OSError:
        return False


def _kill_quietly(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
