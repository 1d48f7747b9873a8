"""Where telemetry goes, read once per process from the OpenTelemetry environment variables (pure: no I/O).

``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the per-signal ``..._TRACES_ENDPOINT``/``..._METRICS_ENDPOINT``) turns OTLP
export on; ``OTEL_EXPORTER_OTLP_PROTOCOL`` picks ``http/protobuf`` (default) or ``grpc``; headers, timeout and
service name follow the OTel conventions. ``OTEL_SDK_DISABLED=true`` turns the SDK off (no spans at all, so no
``traces.jsonl`` either); ``CODEX_ORCHESTRATOR_OTEL=off`` turns only the export off: ``traces.jsonl`` stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from codex_orchestrator.errors import RequestError

OFF_VALUES = frozenset({"off", "false", "0", "no", "disabled"})
DEFAULT_SERVICE_NAME = "codex-orchestrator"
# One export request may take this long (OTEL_EXPORTER_OTLP_TIMEOUT overrides): short, since a dead endpoint
# must not hold a shutdown for long (the whole shutdown is bounded at SHUTDOWN_DEADLINE_S anyway).
DEFAULT_EXPORT_TIMEOUT_S = 4.0


class Protocol(StrEnum):
    HTTP = "http/protobuf"
    GRPC = "grpc"


class ExportState(StrEnum):
    """Whether a run's spans and metrics leave the process (recorded in the manifest's ``telemetry``)."""

    OTLP = "otlp"  # exported to the OTLP endpoint
    OFF = "off"  # no endpoint, CODEX_ORCHESTRATOR_OTEL=off or the request's telemetry.export: false
    SDK_DISABLED = "sdk-disabled"  # OTEL_SDK_DISABLED=true: no spans at all


@dataclass(frozen=True)
class OtelConfig:
    export: ExportState
    protocol: Protocol = Protocol.HTTP
    traces_endpoint: str | None = None
    metrics_endpoint: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    service_name: str = DEFAULT_SERVICE_NAME
    timeout_s: float = DEFAULT_EXPORT_TIMEOUT_S

    @property
    def endpoint_label(self) -> str | None:
        """The endpoint as recorded: scheme, host and port only (a URL may carry credentials)."""
        if self.traces_endpoint is None:
            return None
        parts = urlsplit(self.traces_endpoint)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


def _signal_endpoint(base: str, signal: str, protocol: Protocol) -> str:
    if protocol is Protocol.GRPC:
        return base  # gRPC has one endpoint for every signal
    return base.rstrip("/") + f"/v1/{signal}"


def parse_headers(value: str) -> tuple[tuple[str, str], ...]:
    """``OTEL_EXPORTER_OTLP_HEADERS``: ``key=value`` pairs separated by commas, values URL-encoded."""
    from urllib.parse import unquote

    pairs: list[tuple[str, str]] = []
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise RequestError(f"OTEL_EXPORTER_OTLP_HEADERS: {item.strip()!r} is not key=value", field="env")
        pairs.append((unquote(key.strip()).lower(), unquote(val.strip())))
    return tuple(pairs)


def config_from_env(env: Mapping[str, str]) -> OtelConfig:
    """The process's telemetry configuration; RequestError names a bad variable."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return OtelConfig(export=ExportState.SDK_DISABLED)
    service = env.get("OTEL_SERVICE_NAME", "").strip() or DEFAULT_SERVICE_NAME
    raw_protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    try:
        protocol = Protocol(raw_protocol)
    except ValueError:
        raise RequestError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: {raw_protocol!r} is not one of http/protobuf, grpc", field="env"
        ) from None
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip() or (
        _signal_endpoint(base, "traces", protocol) if base else ""
    )
    metrics = env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "").strip() or (
        _signal_endpoint(base, "metrics", protocol) if base else ""
    )
    off = env.get("CODEX_ORCHESTRATOR_OTEL", "").strip().lower() in OFF_VALUES
    if off or not (traces or metrics):
        return OtelConfig(export=ExportState.OFF, protocol=protocol, service_name=service)
    raw_timeout = env.get("OTEL_EXPORTER_OTLP_TIMEOUT", "").strip()
    try:
        # The OTel spec gives this variable in milliseconds.
        timeout_s = float(raw_timeout) / 1000 if raw_timeout else DEFAULT_EXPORT_TIMEOUT_S
    except ValueError:
        raise RequestError(
            f"OTEL_EXPORTER_OTLP_TIMEOUT: {raw_timeout!r} is not a number of milliseconds", field="env"
        ) from None
    return OtelConfig(
        export=ExportState.OTLP,
        protocol=protocol,
        traces_endpoint=traces or None,
        metrics_endpoint=metrics or None,
        headers=parse_headers(env.get("OTEL_EXPORTER_OTLP_HEADERS", "")),
        service_name=service,
        timeout_s=min(max(timeout_s, 0.1), DEFAULT_EXPORT_TIMEOUT_S),
    )
