"""The one way out of an agent's sandbox: a relay to the model endpoint, and nothing else.

codex runs in our bubblewrap sandbox with an empty network namespace (no network unless the step grants it). Its
model endpoint is reached through a Unix socket bound into the sandbox:

    codex ──TCP──> 127.0.0.1:P (inside, ``inside_main``) ──unix socket──> ``ModelBridge`` (host) ──TCP──> endpoint

A loopback endpoint (``http://127.0.0.1:P/v1``: a local model, the scripted model) is relayed as is, on the same
address inside, so codex's configuration stays unchanged. A remote endpoint (``https://host/v1``) is reached
through ``HTTPS_PROXY`` inside: the host side then accepts only ``CONNECT host:port`` of that endpoint, and TLS
stays end to end. The agent's commands share the namespace, so they can reach the model endpoint too; nothing
else.

Inside the sandbox: ``python -m codex_orchestrator.agents.bridge --listen 127.0.0.1:P --unix SOCK -- codex ...``
runs codex as its child (stdio inherited) and exits with its exit code. Standard library only: it starts in the
sandbox before codex, on every agent step.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

_CHUNK = 65536
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Endpoint:
    """Where codex's model is: ``host:port``, and whether it is reached through a CONNECT proxy (https)."""

    host: str
    port: int
    via_proxy: bool

    @property
    def inside_listen(self) -> tuple[str, int]:
        """The address the inside relay listens on: the endpoint's own for loopback, a fixed proxy port else."""
        return ("127.0.0.1", self.port) if not self.via_proxy else ("127.0.0.1", PROXY_PORT)


PROXY_PORT = 3128  # inside the sandbox's own network namespace: no clash with the host


def endpoint_of(base_url: str) -> Endpoint:
    """The endpoint of a provider ``base_url``: loopback http is relayed directly, anything else via CONNECT."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    direct = parts.scheme == "http" and host in _LOOPBACK
    return Endpoint(host=host, port=port, via_proxy=not direct)


class ModelBridge:
    """Host side: accepts on a Unix socket, relays each connection to the endpoint (only there)."""

    def __init__(self, endpoint: Endpoint, socket_path: Path) -> None:
        self.endpoint = endpoint
        self.socket_path = socket_path
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(socket_path))
        self._server.listen(16)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="model-bridge", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.endpoint.via_proxy and not self._connect_handshake(conn):
                conn.close()
                return
            upstream = socket.create_connection((self.endpoint.host, self.endpoint.port), timeout=30)
            upstream.settimeout(None)
        except OSError:
            conn.close()
            return
        if self.endpoint.via_proxy:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pipe(conn, upstream)

    def _connect_handshake(self, conn: socket.socket) -> bool:
        """Read a ``CONNECT host:port`` request; only the endpoint's own host and port pass."""
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            data = conn.recv(1024)
            if not data:
                return False
            head += data
        first = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        wanted = f"{self.endpoint.host}:{self.endpoint.port}"
        if len(first) < 2 or first[0] != "CONNECT" or first[1].lower() != wanted.lower():
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\nonly the model endpoint is reachable\r\n")
            return False
        return True


def pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes; then close both."""

    def one_way(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(_CHUNK):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=one_way, args=(b, a), daemon=True)
    other.start()
    one_way(a, b)
    other.join()
    a.close()
    b.close()


def inside_main(argv: Sequence[str] | None = None) -> int:
    """Inside the sandbox: listen on loopback, relay to the Unix socket, run the child, exit as it does."""
    parser = argparse.ArgumentParser(prog="bridge")
    parser.add_argument("--listen", help="HOST:PORT inside the sandbox (absent: no relay)")
    parser.add_argument("--unix", help="the host side's Unix socket")
    parser.add_argument("--keep-env", default="", help="comma-separated names: the child's whole environment")
    parser.add_argument("child", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    child_argv = args.child[1:] if args.child[:1] == ["--"] else args.child
    if not child_argv:
        parser.error("no command to run after --")
    keep = {name for name in args.keep_env.split(",") if name}
    env = {name: value for name, value in os.environ.items() if name in keep}
    if args.listen and args.unix:
        _relay(args.listen, args.unix)
    child = subprocess.Popen(child_argv, env=env)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: child.send_signal(s))
    code = child.wait()
    return code if code >= 0 else 128 - code


def _relay(listen: str, unix_path: str) -> None:
    """Accept on ``listen`` (inside the sandbox) and pipe each connection to the host's Unix socket."""
    host, _, port = listen.rpartition(":")
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, int(port)))
    server.listen(16)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            try:
                up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                up.connect(unix_path)
            except OSError:
                conn.close()
                continue
            threading.Thread(target=pipe, args=(conn, up), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


if __name__ == "__main__":
    os.environ.pop("PYTHONSTARTUP", None)
    sys.exit(inside_main())
