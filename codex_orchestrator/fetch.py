"""The fetch fence: an HTTP(S) GET from the orchestrator process that cannot reach what the sandbox would hide.

A fetch runs outside bubblewrap, so the fence is here: only ``http``/``https``; the host is resolved once and
every address must be public (no loopback, link-local, private, shared, multicast, reserved or unspecified
address, IPv4 or IPv6, IPv4-mapped and NAT64/6to4 forms unwrapped) unless the request's ``fetch.allow_hosts``
names the host; the connection goes to the address that was checked (no DNS rebinding in between); redirects are
followed by hand, each hop checked the same way; the body is capped and the whole fetch has a deadline.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from codex_orchestrator.errors import FetchError, FetchRefused

DEFAULT_FETCH_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_FETCH_MAX_REDIRECTS = 5
ALLOWED_SCHEMES = ("http", "https")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_READ_CHUNK_BYTES = 64 * 1024
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class FetchPolicy:
    """What a run's fetches may reach; from the request's ``fetch`` settings."""

    allow_hosts: frozenset[str] = frozenset()  # host names or literal addresses, lower case
    max_bytes: int = DEFAULT_FETCH_MAX_BYTES
    max_redirects: int = DEFAULT_FETCH_MAX_REDIRECTS

    def allows(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allow_hosts


@dataclass(frozen=True)
class FetchResponse:
    status: int
    final_url: str
    body: bytes
    redirects: tuple[str, ...] = ()


def is_public(address: IpAddress) -> bool:
    """Whether ``address`` is a globally routable unicast address, looking through IPv6 wrappings of IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded: IpAddress | None = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not (
        address.is_multicast or address.is_loopback or address.is_link_local or address.is_unspecified
    )


@dataclass(frozen=True)
class CheckedTarget:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the checked address the connection goes to


def check_url(url: str, policy: FetchPolicy) -> CheckedTarget:
    """Resolve and check one URL against the fence; raises ``FetchRefused`` naming what is not allowed."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise FetchRefused(url, f"scheme {scheme or '(none)'!r} is not allowed (allowed: http, https)")
    host = parts.hostname
    if not host:
        raise FetchRefused(url, "the URL names no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise FetchRefused(url, f"bad port: {exc}") from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(url, f"cannot resolve {host}: {exc.strerror}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise FetchError(url, f"{host} has no address")
    if not policy.allows(host):
        # Every address must be public: a name that resolves to one public and one loopback address would
        # otherwise let the connection pick the one the fence was meant to hide.
        hidden = [a for a in addresses if not is_public(a)]
        if hidden:
            raise FetchRefused(
                url,
                f"{host} resolves to {hidden[0]}, which is not a public address "
                "(add the host to the request's fetch.allow_hosts to allow it)",
            )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return CheckedTarget(scheme=scheme, host=host, port=port, path=path, address=str(addresses[0]))


def fetch(url: str, policy: FetchPolicy, timeout_s: float) -> FetchResponse:
    """GET ``url`` within the fence; redirects are followed (each hop re-checked) up to the policy's limit."""
    deadline = time.monotonic() + timeout_s
    redirects: list[str] = []
    current = url
    while True:
        target = check_url(current, policy)
        status, location, body = _get(current, target, policy, deadline)
        if status in _REDIRECTS and location:
            if len(redirects) >= policy.max_redirects:
                raise FetchError(current, f"more than {policy.max_redirects} redirects")
            redirects.append(current)
            current = urljoin(current, location)
            continue
        return FetchResponse(status=status, final_url=current, body=body, redirects=tuple(redirects))


def _get(
    url: str, target: CheckedTarget, policy: FetchPolicy, deadline: float
) -> tuple[int, str | None, bytes]:
    import http.client  # with ssl ~10 ms: imported by a fetch, not by every process that could fetch

    from codex_orchestrator.fetch_connection import PinnedHTTPConnection, PinnedHTTPSConnection

    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(url, "timed out")
    connection: http.client.HTTPConnection = (
        PinnedHTTPSConnection(target, left)
        if target.scheme == "https"
        else PinnedHTTPConnection(target, left)
    )
    try:
        connection.request(
            "GET", target.path, headers={"User-Agent": "codex-orchestrator", "Accept-Encoding": "identity"}
        )
        response = connection.getresponse()
        if response.status in _REDIRECTS:
            return response.status, response.getheader("Location"), b""
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > policy.max_bytes:
            raise FetchError(
                url, f"the body ({declared} bytes) is over the limit of {policy.max_bytes} bytes"
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() >= deadline:
                raise FetchError(url, "timed out")
            chunk = response.read(_READ_CHUNK_BYTES)
            if not chunk:
                break
            size += len(chunk)
            if size > policy.max_bytes:
                raise FetchError(url, f"the body is over the limit of {policy.max_bytes} bytes")
            chunks.append(chunk)
        return response.status, None, b"".join(chunks)
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(url, f"{type(exc).__name__}: {exc}") from exc
    finally:
        connection.close()
