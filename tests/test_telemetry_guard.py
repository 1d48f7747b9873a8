"""The overload guard's policy (pure, with an injected clock) and the OTel environment configuration."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from codex_orchestrator.errors import RequestError
from codex_orchestrator.telemetry.config import ExportState, Protocol, config_from_env, parse_headers
from codex_orchestrator.telemetry.guard import (
    MAX_ATTEMPTS_PER_MINUTE,
    MAX_PENDING_SPANS,
    GuardedSpanExporter,
    backoff_delay_s,
)
from tests.otel_backend import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Endpoint(SpanExporter):
    """The far side of the guard in the policy tests: up or down as the test says, counting what reaches it."""

    def __init__(self) -> None:
        self.up = False
        self.calls: list[float] = []
        self.received: list[str] = []
        self.clock: Clock | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls.append(self.clock() if self.clock else 0.0)
        if not self.up:
            return SpanExportResult.FAILURE
        self.received.extend(s.name for s in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _spans(n: int, prefix: str = "s") -> list[ReadableSpan]:
    tracer = TracerProvider().get_tracer("test")
    out: list[ReadableSpan] = []
    for i in range(n):
        span = tracer.start_span(f"{prefix}{i}")
        span.end()
        out.append(span)  # type: ignore[arg-type]
    return out


def test_backoff_is_exponential_with_a_ceiling() -> None:
    delays = [backoff_delay_s(n) for n in range(0, 7)]
    assert delays == [0.0, 20.0, 40.0, 60.0, 60.0, 60.0, 60.0]


def test_a_dead_endpoint_sees_at_most_three_attempts_in_any_minute_and_nothing_is_lost_once_it_is_back() -> (
    None
):
    clock, endpoint = Clock(), Endpoint()
    endpoint.clock = clock
    guard = GuardedSpanExporter(endpoint, clock=clock)
    # The batch processor hands over a batch every second for ten minutes while the endpoint is down.
    for second in range(600):
        clock.now = float(second)
        result = guard.export(_spans(1, f"t{second}-"))
        assert result in (SpanExportResult.SUCCESS, SpanExportResult.FAILURE)  # never raises
    for start in range(0, 600):
        window = [t for t in endpoint.calls if start <= t < start + 60]
        assert len(window) <= MAX_ATTEMPTS_PER_MINUTE, (start, window)
    assert guard.guard.counters.failures == len(endpoint.calls)
    # The buffer is bounded: 600 spans were kept (under the limit); the endpoint comes back.
    endpoint.up = True
    clock.now = 10_000.0
    assert guard.export(_spans(1, "last")) is SpanExportResult.SUCCESS
    assert len(endpoint.received) == 601
    assert guard.guard.backoff.consecutive_failures == 0


def test_the_pending_buffer_is_bounded_and_counts_what_it_drops() -> None:
    clock, endpoint = Clock(), Endpoint()
    guard = GuardedSpanExporter(endpoint, clock=clock)
    guard.export(_spans(1))  # fails: backoff starts
    guard.export(_spans(MAX_PENDING_SPANS + 10))  # buffered while backing off
    assert guard.guard.counters.dropped == 11
    guard.shutdown()  # the endpoint never came back: what was pending is counted as dropped
    assert guard.guard.counters.dropped == 11 + MAX_PENDING_SPANS
    assert guard.export(_spans(1)) is SpanExportResult.FAILURE  # after shutdown: refused, counted
    assert guard.guard.counters.dropped == 12 + MAX_PENDING_SPANS


def test_a_refused_connection_is_one_attempt_and_fails_fast() -> None:
    """The real OTLP/HTTP exporter, at a loopback port nobody listens on: the guard counts one failed attempt,
    and the exporter's own backoff loop is not entered (it would wait up to its timeout)."""
    clock = Clock()
    from codex_orchestrator.telemetry.process import _single_attempt

    inner = _single_attempt(
        OTLPSpanExporter(endpoint=f"http://127.0.0.1:{free_port()}/v1/traces", timeout=30)
    )
    guard = GuardedSpanExporter(inner, clock=clock)
    assert guard.export(_spans(2)) is SpanExportResult.FAILURE
    assert guard.export(_spans(2)) is SpanExportResult.SUCCESS  # backing off: kept, not attempted
    assert (guard.guard.counters.attempts, guard.guard.counters.failures) == (1, 1)
    assert guard.guard.counters.last_error
    guard.shutdown()


def test_config_follows_the_otel_variables() -> None:
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    config = config_from_env(base)
    assert config.export is ExportState.OTLP and config.protocol is Protocol.HTTP
    assert config.traces_endpoint == "http://collector:4318/v1/traces"
    assert config.metrics_endpoint == "http://collector:4318/v1/metrics"
    grpc = config_from_env({**base, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert grpc.protocol is Protocol.GRPC and grpc.traces_endpoint == "http://collector:4318/"
    assert config_from_env({}).export is ExportState.OFF
    assert config_from_env({**base, "CODEX_ORCHESTRATOR_OTEL": "off"}).export is ExportState.OFF
    assert config_from_env({**base, "OTEL_SDK_DISABLED": "true"}).export is ExportState.SDK_DISABLED
    named = config_from_env({**base, "OTEL_SERVICE_NAME": "ci-agent", "OTEL_EXPORTER_OTLP_TIMEOUT": "60000"})
    assert named.service_name == "ci-agent"
    assert named.timeout_s == 4.0  # capped: shutdown must stay within 5 s
    signal = config_from_env(
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://u:p@api.example.invalid/v1/traces"}
    )
    assert signal.metrics_endpoint is None
    assert signal.endpoint_label == "https://api.example.invalid"  # credentials never recorded


def test_headers_and_bad_values_get_one_clear_message() -> None:
    assert parse_headers("x-honeycomb-team=abc%3D,  x-b = 2") == (("x-honeycomb-team", "abc="), ("x-b", "2"))
    with pytest.raises(RequestError, match="OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift'"):
        config_from_env(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}
        )
    with pytest.raises(RequestError, match="OTEL_EXPORTER_OTLP_HEADERS: 'novalue' is not key=value"):
        config_from_env(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"}
        )
