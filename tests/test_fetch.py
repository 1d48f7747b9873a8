"""The fetch fence: only http(s), only public addresses unless a host is allowed, redirects re-checked, a body cap.

A real HTTP server on loopback stands in for the services a fetch must not reach unless the request allows them.
"""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codex_orchestrator.errors import FetchError, FetchRefused, RequestError
from codex_orchestrator.fetch import FetchPolicy, check_url, fetch, is_public
from codex_orchestrator.policy import Capability, ToolKind
from codex_orchestrator.request import parse_request
from codex_orchestrator.toolcall import ToolCallSpec
from tests.test_gate import ScriptedApprover, finish, make_gate

BODY = b"loopback-service-body\n"


@dataclass
class Server:
    port: int
    hits: list[str]

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def loopback() -> Iterator[Server]:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(f"{self.headers['Host']}{self.path}")
            if self.path.startswith("/redirect-to/"):
                self.send_response(302)
                self.send_header("Location", self.path.removeprefix("/redirect-to/").replace("~", "/"))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b"x" * 5000 if self.path == "/big" else BODY
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(port=server.server_address[1], hits=hits)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
    ],
)
def test_non_public_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/x", "gopher://x/", "data:,hi", "/etc/x"]
)
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(FetchRefused, match="scheme"):
        check_url(url, FetchPolicy())


def test_loopback_is_refused_unless_its_host_is_allowed(loopback: Server) -> None:
    for host in ("127.0.0.1", "localhost"):
        with pytest.raises(FetchRefused, match="not a public address"):
            fetch(loopback.url(host, "/"), FetchPolicy(), 10)
    assert loopback.hits == []  # refused before any connection
    response = fetch(loopback.url("localhost", "/"), FetchPolicy(allow_hosts=frozenset({"localhost"})), 10)
    assert response.status == 200 and response.body == BODY
    assert loopback.hits == [f"localhost:{loopback.port}/"]  # the Host header keeps the name


def test_each_redirect_is_checked_and_the_final_url_recorded(loopback: Server) -> None:
    allowed = FetchPolicy(allow_hosts=frozenset({"localhost"}))
    inner = loopback.url("localhost", "/final").replace("/", "~")
    response = fetch(loopback.url("localhost", f"/redirect-to/{inner}"), allowed, 10)
    assert response.final_url == loopback.url("localhost", "/final") and response.body == BODY
    assert response.redirects == (loopback.url("localhost", f"/redirect-to/{inner}"),)
    # From the allowed host to a loopback address that is not allowed: refused at the hop, never fetched.
    escape = loopback.url("127.0.0.1", "/secret").replace("/", "~")
    with pytest.raises(FetchRefused, match=r"127\.0\.0\.1"):
        fetch(loopback.url("localhost", f"/redirect-to/{escape}"), allowed, 10)
    assert not any(hit.endswith("/secret") for hit in loopback.hits)
    with pytest.raises(FetchError, match="more than 0 redirects"):
        fetch(
            loopback.url("localhost", f"/redirect-to/{inner}"),
            FetchPolicy(allow_hosts=allowed.allow_hosts, max_redirects=0),
            10,
        )


def test_the_body_is_capped(loopback: Server) -> None:
    policy = FetchPolicy(allow_hosts=frozenset({"localhost"}), max_bytes=4096)
    with pytest.raises(FetchError, match="over the limit of 4096 bytes"):
        fetch(loopback.url("localhost", "/big"), policy, 10)


def test_a_fetch_step_through_the_gate_cannot_read_loopback(loopback: Server, workspace: Path) -> None:
    gate = make_gate(workspace, ScriptedApprover(), profile=frozenset(Capability))
    spec = ToolCallSpec(
        step="f", milestone="exec", kind=ToolKind.FETCH, cwd=workspace, url=loopback.url("127.0.0.1", "/")
    )
    call = gate.run(spec)
    assert call.status == "failed" and "not a public address" in call.output_tail
    assert "loopback-service-body" not in call.output_tail and loopback.hits == []
    finish(gate)


def test_requests_refuse_other_schemes_at_validation(workspace: Path) -> None:
    data = {
        "task": "t",
        "workspace": str(workspace),
        "steps": [{"name": "f", "kind": "fetch", "url": "file:///etc/passwd"}],
    }
    with pytest.raises(RequestError, match=r"steps\[f\].*only http and https"):
        parse_request(data)
    data["steps"] = [{"name": "f", "kind": "fetch", "url": "http://localhost/"}]
    data["fetch"] = {"allow_hosts": ["LocalHost"], "max_bytes": 100}
    assert parse_request(data).fetch.allow_hosts == ["LocalHost"]
