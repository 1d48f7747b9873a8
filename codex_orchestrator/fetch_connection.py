"""HTTP(S) connections pinned to the address the fetch fence checked (``fetch.check_url``): no second DNS lookup
between the check and the connection. Its own module so that ``http.client`` and ``ssl`` load with a fetch."""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codex_orchestrator.fetch import CheckedTarget


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an address checked beforehand, while the Host header keeps the name."""

    def __init__(self, target: CheckedTarget, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As ``PinnedHTTPConnection``, with TLS verified against the host name (SNI too)."""

    def __init__(self, target: CheckedTarget, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address
        self._tls = ssl.create_default_context()

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
