"""Our spans inside Prefect's: Prefect (``prefect.telemetry``) starts each flow-run and task-run span under the
trace context in its parent run's ``__OTEL_TRACEPARENT`` label. ``span_in_run`` opens one of our spans and,
while it is open, puts its context in that label of the current flow run (and task run) in memory, so the
subflows and tasks Prefect starts inside it become its children: autonomy → run → exec flow → milestone →
tool-call task → tool_call → approval → approval flow. The label on the server is left as Prefect set it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from opentelemetry.trace import Span
from prefect.context import FlowRunContext, TaskRunContext
from prefect.telemetry.run_telemetry import LABELS_TRACEPARENT_KEY

from codex_orchestrator.execute import read_secrets
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.run import RunOwner
from codex_orchestrator.telemetry import RunTracer, current_traceparent
from codex_orchestrator.telemetry.vocabulary import MILESTONE, SpanName


@contextmanager
def prefect_children_under_current_span() -> Iterator[None]:
    """While inside: runs Prefect starts from here take the current span as their parent."""
    traceparent = current_traceparent()
    runs: list[Any] = []
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        runs.append(flow_ctx.flow_run)
    task_ctx = TaskRunContext.get()
    if task_ctx is not None:
        runs.append(task_ctx.task_run)
    if traceparent is None or not runs:
        yield
        return
    saved = [(run, run.labels.get(LABELS_TRACEPARENT_KEY)) for run in runs]
    for run in runs:
        run.labels[LABELS_TRACEPARENT_KEY] = traceparent
    try:
        yield
    finally:
        for run, before in saved:
            if before is None:
                run.labels.pop(LABELS_TRACEPARENT_KEY, None)
            else:
                run.labels[LABELS_TRACEPARENT_KEY] = before


@contextmanager
def span_in_run(
    tracer: RunTracer, name: str, **attributes: str | bool | int | float | None
) -> Iterator[Span]:
    """``tracer.span(name)``, with the Prefect runs started inside nested under it."""
    with tracer.span(name, **attributes) as span, prefect_children_under_current_span():
        yield span


class _RunParams(Protocol):
    @property
    def run(self) -> RunRef: ...

    @property
    def secret_env(self) -> list[str]: ...


_F = TypeVar("_F", bound=Callable[..., Any])


def milestone_span(name: str) -> Callable[[_F], _F]:
    """Decorates a milestone flow (under ``@flow``): its body runs in the milestone's span, a child of Prefect's
    span of this flow run and the parent of the task runs it starts. The first parameter is the run by value."""

    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def traced(params: _RunParams, *args: Any, **kwargs: Any) -> Any:
            owner = RunOwner.open(params.run, secrets=read_secrets(params.secret_env).values())
            try:
                with span_in_run(owner.tracer, SpanName.MILESTONE, **{MILESTONE: name}):
                    return fn(params, *args, **kwargs)
            finally:
                owner.close()

        # Prefect validates a flow's parameters from its signature, resolving string annotations in the
        # globals of the function it holds (this module's): give it the signature resolved where fn lives.
        traced.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
        return traced  # type: ignore[return-value]

    return decorate
