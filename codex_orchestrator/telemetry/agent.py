"""Spans and metrics of an agent step, driven by its ``agent.*`` events: agent turn → tool call → approval.

The driver makes one ``AgentTelemetry`` in the agent step's own span (its ``tool_call`` span) and hands it
every agent event it emits (``observe``): ``agent.turn.started`` opens an ``agent_turn`` span under the step,
``agent.turn.finished`` ends it with the turn's status, ``agent.tokens`` adds to its token counts and to the
``codex.agent.tokens`` metric. The agent's own tool calls are gated elsewhere (another thread: the protocol
client's reader; or another process): they nest under the open turn by running inside ``turn_context()``, or
by carrying ``traceparent()`` (``CallInput.traceparent``). Their outcomes are counted by the gate itself
(``codex.agent.tool_calls``, from the record's ``parent_call_id``). Thread-safe: events may come from any thread.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from codex_orchestrator.records.agent_events import (
    AgentCommand,
    AgentError,
    AgentEvent,
    AgentFileChange,
    AgentTokens,
    AgentToolUse,
    AgentTurnFinished,
    AgentTurnStarted,
)
from codex_orchestrator.telemetry.metrics import token_measurements, turn_measurements
from codex_orchestrator.telemetry.spans import TRACEPARENT, RunTracer
from codex_orchestrator.telemetry.vocabulary import (
    AGENT,
    AGENT_THREAD_ID,
    AGENT_TURN_ID,
    AGENT_TURN_STATUS,
    STEP,
    TOOL_CALL_ID,
    SpanName,
    TokenType,
    agent_of,
    turn_status_of,
)

# OpenTelemetry's GenAI semantic conventions name a model call's token usage so: backends chart them as such.
GEN_AI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"


class AgentTelemetry:
    """The spans and metrics of one agent step's turns (see the module docstring)."""

    def __init__(self, tracer: RunTracer, *, step: str, call_id: str, agent: str) -> None:
        self._tracer = tracer
        self._agent = agent_of(agent)
        self._attrs = {STEP: step, TOOL_CALL_ID: call_id, AGENT: self._agent}
        # The agent step's span, current where this is made: turns nest under it whichever thread observes.
        self._parent = otel_context.get_current()
        self._lock = threading.Lock()
        self._turn: Span | None = None
        self._tokens: Counter[str] = Counter()

    def observe(self, event: AgentEvent) -> None:
        """Take in one agent event as it is emitted."""
        if isinstance(event, AgentTurnStarted):
            self._open(event)
        elif isinstance(event, AgentTurnFinished):
            self._close(event.status, event.error)
        elif isinstance(event, AgentTokens):
            counts = event.last.model_dump()
            self._tracer.record_measurements(token_measurements(self._agent, counts))
            with self._lock:
                self._tokens.update({k: v for k, v in counts.items() if isinstance(v, int)})
                span = self._turn
                tokens = dict(self._tokens)
            if span is not None:
                span.set_attribute(GEN_AI_INPUT_TOKENS, tokens.get(TokenType.INPUT.value, 0))
                span.set_attribute(GEN_AI_OUTPUT_TOKENS, tokens.get(TokenType.OUTPUT.value, 0))
        elif isinstance(event, AgentCommand | AgentFileChange | AgentToolUse | AgentError):
            with self._lock:
                span = self._turn
            if span is not None:  # what the agent did, as span events (its tool calls have their own spans)
                span.add_event(event.type, {"codex.agent.item.status": _item_status(event)})

    def _open(self, event: AgentTurnStarted) -> None:
        self._close("interrupted", "a new turn began before this one finished")
        span = self._tracer.start(
            SpanName.AGENT_TURN.value,
            self._parent,
            **self._attrs,
            **{AGENT_THREAD_ID: event.thread_id, AGENT_TURN_ID: event.turn_id},
        )
        with self._lock:
            self._turn = span
            self._tokens = Counter()

    def _close(self, status: str, error: str | None) -> None:
        with self._lock:
            span, self._turn = self._turn, None
        if span is None:
            return
        span.set_attribute(AGENT_TURN_STATUS, turn_status_of(status))
        if status != "completed":
            self._tracer.fail(span, error or status)
        else:
            span.set_status(Status(StatusCode.OK))
        self._tracer.record_measurements(turn_measurements(self._agent, status))
        self._tracer.end(span)

    def close(self, error: str | None = None) -> None:
        """The step is over: a turn still open ends as interrupted (the step was stopped, or codex died)."""
        self._close("interrupted", error or "the agent step ended during the turn")

    def _context(self) -> otel_context.Context:
        with self._lock:
            span = self._turn
        return trace.set_span_in_context(span, self._parent) if span is not None else self._parent

    @contextmanager
    def turn_context(self) -> Iterator[None]:
        """Spans started inside (a gated tool call's) nest under the open turn, in any thread."""
        token = otel_context.attach(self._context())
        try:
            yield
        finally:
            otel_context.detach(token)

    def traceparent(self) -> str | None:
        """The open turn's W3C ``traceparent`` (else the step's), for a tool call gated in another process."""
        context = self._context()
        if not trace.get_current_span(context).get_span_context().is_valid:
            return None
        # as spans.current_traceparent: propagate is imported only when a trace crosses processes
        from opentelemetry import propagate

        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=context)
        return carrier.get(TRACEPARENT)


def _item_status(event: AgentCommand | AgentFileChange | AgentToolUse | AgentError) -> str:
    if isinstance(event, AgentError):
        return "retrying" if event.will_retry else "failed"
    return event.status
