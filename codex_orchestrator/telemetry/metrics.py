"""The run metrics sent over OTLP: what one finished tool call or approval wait adds, as pure data, and the
meter that records it (one set of instruments per process).

``call_measurements`` maps a finished call's record to its measurements; the gate calls ``CallMetrics`` at
the same points where it closes spans. Every attribute value comes from a closed vocabulary (vocabulary.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Observation

from codex_orchestrator import __version__
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.sandbox import SandboxState
from codex_orchestrator.telemetry.vocabulary import (
    AGENT,
    AGENT_TURN_STATUS,
    CACHE_RESULT,
    OUTCOME,
    QUANTILE,
    TOKEN_TYPE,
    TOOL,
    TokenType,
    agent_of,
    approval_source_of,
    denial_of,
    outcome_of,
    tool_of,
    turn_status_of,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider

TOOL_CALLS = "codex.tool_calls"
TOOL_CALL_DURATION = "codex.tool_call.duration"
APPROVAL_WAIT = "codex.approval.wait"
APPROVALS = "codex.approvals"
CACHE_LOOKUPS = "codex.approval_cache.lookups"
CACHE_HIT_RATIO = "codex.approval_cache.hit_ratio"
RETRIES = "codex.retries"
SANDBOX_DENIALS = "codex.sandbox.denials"
SANDBOX_ESCALATIONS = "codex.sandbox.escalations"
GUARD_SWITCHES = "codex.guard.switches"
STREAM_LATENCY = "codex.stream.delivery_latency"
AGENT_TOOL_CALLS = "codex.agent.tool_calls"
AGENT_TOKENS = "codex.agent.tokens"
AGENT_TURNS = "codex.agent.turns"

Attrs = dict[str, str]


@dataclass(frozen=True)
class Measurement:
    instrument: str
    value: float
    attributes: tuple[tuple[str, str], ...] = ()


def _m(instrument: str, value: float, **attrs: str) -> Measurement:
    return Measurement(instrument, value, tuple(sorted(attrs.items())))


def call_measurements(call: ToolCallRecord) -> list[Measurement]:
    """What a finished call adds to the metrics (pure)."""
    tool = tool_of(call.kind)
    outcome = outcome_of(call.status, call.sandbox.state)
    out = [
        _m(TOOL_CALLS, 1, **{OUTCOME: outcome, TOOL: tool}),
        _m(TOOL_CALL_DURATION, call.duration_ms or 0.0, **{OUTCOME: outcome, TOOL: tool}),
    ]
    source = approval_source_of(call.approval_source)
    if source is not None:
        out.append(_m(APPROVALS, 1, **{"codex.approval.source": source}))
    if call.approval_cache is not None:
        out.append(_m(CACHE_LOOKUPS, 1, **{CACHE_RESULT: call.approval_cache}))
    retries = max(len(call.attempts) - 1, 0)
    if retries:
        out.append(_m(RETRIES, retries, **{TOOL: tool}))
    denial = denial_of(call.sandbox.denial)
    if denial is not None:
        out.append(_m(SANDBOX_DENIALS, 1, **{"codex.sandbox.denial": denial}))
    if call.sandbox.state == SandboxState.ESCALATED.value:
        out.append(_m(SANDBOX_ESCALATIONS, 1, **{TOOL: tool}))
    if call.guard.switched:
        out.append(_m(GUARD_SWITCHES, 1, **{TOOL: tool}))
    if call.parent_call_id is not None:  # a tool call an agent made, inside an agent step
        out.append(_m(AGENT_TOOL_CALLS, 1, **{OUTCOME: outcome, TOOL: tool}))
    return out


def token_measurements(agent: str, counts: Mapping[str, int]) -> list[Measurement]:
    """One model response's token usage (``agent.tokens``' ``last``), by token type; zero counts add nothing."""
    return [
        _m(AGENT_TOKENS, counts[t.value], **{AGENT: agent_of(agent), TOKEN_TYPE: t.value})
        for t in TokenType
        if counts.get(t.value)
    ]


def turn_measurements(agent: str, status: str) -> list[Measurement]:
    return [_m(AGENT_TURNS, 1, **{AGENT: agent_of(agent), AGENT_TURN_STATUS: turn_status_of(status)})]


class CallMetrics:
    """The process's instruments on one ``MeterProvider``; ``record`` applies measurements to them."""

    def __init__(self, meters: MeterProvider) -> None:
        meter = meters.get_meter("codex_orchestrator", __version__)
        self._lock = threading.Lock()
        self._cache = {"hit": 0, "miss": 0}
        self._counters: dict[str, Any] = {
            TOOL_CALLS: meter.create_counter(TOOL_CALLS, unit="{call}", description="tool calls by outcome"),
            APPROVALS: meter.create_counter(APPROVALS, unit="{call}", description="approvals by source"),
            CACHE_LOOKUPS: meter.create_counter(
                CACHE_LOOKUPS, unit="{lookup}", description="approve-for-session cache lookups, hit or miss"
            ),
            RETRIES: meter.create_counter(RETRIES, unit="{attempt}", description="attempts after the first"),
            SANDBOX_DENIALS: meter.create_counter(
                SANDBOX_DENIALS, unit="{call}", description="calls the sandbox blocked, by what it blocked"
            ),
            SANDBOX_ESCALATIONS: meter.create_counter(
                SANDBOX_ESCALATIONS, unit="{call}", description="calls rerun without the sandbox, approved"
            ),
            GUARD_SWITCHES: meter.create_counter(
                GUARD_SWITCHES, unit="{call}", description="streaming guard switches to buffered delivery"
            ),
            AGENT_TOOL_CALLS: meter.create_counter(
                AGENT_TOOL_CALLS, unit="{call}", description="tool calls agents made, by outcome"
            ),
            AGENT_TOKENS: meter.create_counter(
                AGENT_TOKENS, unit="{token}", description="tokens agents' models used, by type"
            ),
            AGENT_TURNS: meter.create_counter(
                AGENT_TURNS, unit="{turn}", description="agent turns, by status"
            ),
        }
        self._histograms: dict[str, Any] = {
            TOOL_CALL_DURATION: meter.create_histogram(
                TOOL_CALL_DURATION, unit="ms", description="a tool call from its start to its end"
            ),
            APPROVAL_WAIT: meter.create_histogram(
                APPROVAL_WAIT, unit="ms", description="from asking to the answer"
            ),
            STREAM_LATENCY: meter.create_histogram(
                STREAM_LATENCY, unit="ms", description="output delivery latency of a call's session"
            ),
        }
        meter.create_observable_gauge(
            CACHE_HIT_RATIO,
            callbacks=[self._hit_ratio],
            unit="1",
            description="approve-for-session cache hits / lookups in this process",
        )

    def _hit_ratio(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            hits, misses = self._cache["hit"], self._cache["miss"]
        if hits + misses:
            yield Observation(hits / (hits + misses))

    def record(self, measurements: Iterable[Measurement]) -> None:
        for m in measurements:
            attrs = dict(m.attributes)
            if m.instrument == CACHE_LOOKUPS:
                with self._lock:
                    self._cache[attrs.get(CACHE_RESULT, "miss")] += 1
            if m.instrument in self._counters:
                self._counters[m.instrument].add(m.value, attrs)
            else:
                self._histograms[m.instrument].record(m.value, attrs)

    def approval_wait(self, wait_ms: float, *, purpose: str, decision: str) -> None:
        self.record(
            [
                _m(
                    APPROVAL_WAIT,
                    wait_ms,
                    **{"codex.approval.purpose": purpose, "codex.approval.decision": decision},
                )
            ]
        )

    def stream_latency(self, p50_ms: float, p95_ms: float, samples: int) -> None:
        if samples:
            self.record(
                [
                    _m(STREAM_LATENCY, p50_ms, **{QUANTILE: "p50"}),
                    _m(STREAM_LATENCY, p95_ms, **{QUANTILE: "p95"}),
                ]
            )
