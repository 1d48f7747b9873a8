"""OpenTelemetry for runs: traces and metrics, to ``traces.jsonl`` and to an OTLP endpoint.

At a glance: ``process.py`` builds one tracer and one meter provider per process from the OTel environment
(config.py), with the overload guard (guard.py) in front of the OTLP exporters; ``spans.py``'s ``RunTracer``
is what a run and its calls use (spans nested in Prefect's, metrics from metrics.py); ``jsonl.py`` writes each
run's ``traces.jsonl``; vocabulary.py is the closed set of attribute values. docs/telemetry.md is the guide.
"""

from __future__ import annotations

from codex_orchestrator.telemetry.jsonl import JsonLinesSpanExporter
from codex_orchestrator.telemetry.process import process_telemetry, reset_process_telemetry
from codex_orchestrator.telemetry.spans import RunTracer, current_traceparent, joined

__all__ = [
    "JsonLinesSpanExporter",
    "RunTracer",
    "current_traceparent",
    "joined",
    "process_telemetry",
    "reset_process_telemetry",
]
