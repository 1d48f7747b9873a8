"""Real OTLP backends on loopback for the telemetry tests, started by the suite itself.

``PhoenixServer``: Arize Phoenix (``phoenix serve`` from its own venv, ``.venv-phoenix``, made by
``make phoenix``) on free loopback ports with a private working directory; traces are read back through its
REST API. Phoenix does not take OTLP metrics, so ``MetricsReceiver`` is a loopback OTLP/HTTP server that
decodes the real ``ExportMetricsServiceRequest`` protobuf payload with ``opentelemetry-proto``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PHOENIX_START_TIMEOUT_S = 180.0


def phoenix_executable() -> Path | None:
    found = os.environ.get("CODEX_PHOENIX") or str(ROOT / ".venv-phoenix" / "bin" / "phoenix")
    return Path(found) if Path(found).exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PhoenixServer:
    """One ``phoenix serve`` process; ``stop()`` ends it (the endpoint goes dead), ``start()`` again."""

    def __init__(self, executable: Path) -> None:
        self.executable = executable
        self.workdir = Path(tempfile.mkdtemp(prefix="phoenix-"))
        self.port = free_port()
        self.grpc_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_endpoint(self) -> str:
        return f"{self.url}/v1/traces"

    def start(self) -> None:
        env = {
            **os.environ,
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(self.grpc_port),
            "PHOENIX_WORKING_DIR": str(self.workdir),
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        log = (self.workdir / "phoenix.log").open("ab")
        self.proc = subprocess.Popen(
            [str(self.executable), "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + PHOENIX_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"phoenix exited: {(self.workdir / 'phoenix.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise AssertionError("phoenix did not become healthy")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spans(self, *, trace_id: str | None = None, project: str = "default") -> list[dict[str, Any]]:
        """Every span Phoenix holds for ``project`` (of one trace if given), through its REST API."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            url = f"{self.url}/v1/projects/{project}/spans?limit=1000" + (
                f"&cursor={cursor}" if cursor else ""
            )
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    page = json.loads(response.read())
            except urllib.error.HTTPError as exc:
                if exc.code == 404:  # no span has arrived yet: the project does not exist
                    return []
                raise
            out.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        if trace_id is not None:
            out = [s for s in out if s["context"]["trace_id"] == trace_id]
        return out

    def wait_for_spans(
        self,
        trace_id: str,
        names: set[str],
        timeout_s: float = 60.0,
        also: Callable[[list[dict[str, Any]]], bool] = lambda _spans: True,
    ) -> list[dict[str, Any]]:
        """The trace's spans once every name in ``names`` is among them and ``also`` holds (Phoenix ingests
        asynchronously)."""
        deadline = time.monotonic() + timeout_s
        while True:
            spans = self.spans(trace_id=trace_id)
            if (names <= {s["name"] for s in spans} and also(spans)) or time.monotonic() > deadline:
                return spans
            time.sleep(0.2)

    def wait_for_run(self, run_id: str, names: set[str], timeout_s: float = 60.0) -> list[dict[str, Any]]:
        """The spans of one of our runs (by ``codex.run_id``) once every name in ``names`` is among them."""
        deadline = time.monotonic() + timeout_s
        while True:
            spans = [s for s in self.spans() if s["attributes"].get("codex.run_id") == run_id]
            if names <= {s["name"] for s in spans} or time.monotonic() > deadline:
                return spans
            time.sleep(0.2)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class MetricsReceiver:
    """A loopback OTLP/HTTP metrics endpoint (``/v1/metrics``) that decodes each request's protobuf payload."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
                    ExportMetricsServiceRequest,
                    ExportMetricsServiceResponse,
                )

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/metrics":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                with receiver.arrived:
                    receiver.requests.append(request)
                    receiver.arrived.notify_all()
                payload = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/metrics"

    def points(self) -> dict[str, list[tuple[dict[str, str], Any]]]:
        """Every data point received, by metric name, with its attributes."""
        out: dict[str, list[tuple[dict[str, str], Any]]] = {}
        with self.arrived:
            requests = list(self.requests)
        for request in requests:
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        kind = metric.WhichOneof("data")
                        for point in getattr(metric, kind).data_points:
                            attrs = {a.key: a.value.string_value for a in point.attributes}
                            out.setdefault(metric.name, []).append((attrs, point))
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def phoenix() -> Iterator[PhoenixServer]:
    """Arize Phoenix on loopback, once per test session (a test that stops it leaves it stopped: use
    ``running_phoenix`` to get it started again)."""
    executable = phoenix_executable()
    if executable is None:
        message = "Arize Phoenix is not installed: `make phoenix` creates .venv-phoenix"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = PhoenixServer(executable)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def running_phoenix(phoenix: PhoenixServer) -> PhoenixServer:
    if not phoenix.running():
        phoenix.start()
    return phoenix


@pytest.fixture
def metrics_receiver() -> Iterator[MetricsReceiver]:
    receiver = MetricsReceiver()
    try:
        yield receiver
    finally:
        receiver.close()
