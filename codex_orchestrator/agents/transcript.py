"""An agent's transcript as events: codex app-server's notifications → the run's ``agent.*`` events (pure).

The driver (agents/codex.py) hands every server notification to ``from_notification`` and emits what comes back
into the run's event log, which redacts secrets like any event's. Deltas (``item/agentMessage/delta``,
``item/commandExecution/outputDelta``, ...) give nothing: the ``item/completed`` that follows carries the whole
item. Fields are read from the JSON as the protocol schema of the pinned codex names them
(schemas/codex-app-server/); a field that is missing or of another type reads as empty, never as an error: a
transcript must not fail the step it describes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any, Literal

from codex_orchestrator.agents.decisions import inner_command
from codex_orchestrator.records.agent_events import (
    AGENT_TEXT_BUDGET_BYTES,
    AgentCommand,
    AgentError,
    AgentEvent,
    AgentFileChange,
    AgentFileDiff,
    AgentFinished,
    AgentMessage,
    AgentPlan,
    AgentPlanStep,
    AgentReasoning,
    AgentStarted,
    AgentTokenCounts,
    AgentTokens,
    AgentToolUse,
    AgentTurnFinished,
    AgentTurnStarted,
    ItemStatus,
)

Params = Mapping[str, Any]

# codex's camelCase statuses → ours (the same words the manifest uses).
_ITEM_STATUS: dict[str, ItemStatus] = {
    "completed": "completed",
    "failed": "failed",
    "declined": "declined",
    "inProgress": "in-progress",
}
_TURN_STATUS: dict[str, Literal["completed", "failed", "interrupted"]] = {
    "completed": "completed",
    "failed": "failed",
    "interrupted": "interrupted",
}
_PLAN_STATUS: dict[str, Literal["pending", "in-progress", "completed"]] = {
    "pending": "pending",
    "inProgress": "in-progress",
    "completed": "completed",
}
_PATCH_KINDS: dict[str, Literal["add", "delete", "update"]] = {
    "add": "add",
    "delete": "delete",
    "update": "update",
}


def started(
    *, step: str, call_id: str, agent: str, agent_version: str, thread_id: str, resumed: bool
) -> AgentStarted:
    """The agent step has its thread (started, or ``resumed`` from an earlier run of the step)."""
    return AgentStarted(
        tool_call_id=call_id,
        step=step,
        thread_id=thread_id,
        agent=agent,
        agent_version=agent_version,
        resumed=resumed,
    )


def finished(
    *,
    step: str,
    call_id: str,
    status: Literal["completed", "failed", "interrupted"],
    turns: int,
    error: str | None,
) -> AgentFinished:
    """The agent step's agent is done: ``turns`` it ran in this run of the step, and why it failed, if it did."""
    return AgentFinished(tool_call_id=call_id, step=step, status=status, turns=turns, error=error)


def from_notification(
    *,
    step: str,
    call_id: str,
    method: str,
    params: Params,
    workspace: str | os.PathLike[str] | None = None,
) -> list[AgentEvent]:
    """The events one server notification gives (often none). ``workspace``: paths under it are made relative."""
    handler = _HANDLERS.get(method)
    if handler is None:
        return []
    ctx = _Context(step=step, call_id=call_id, params=params, workspace=_root(workspace))
    return handler(ctx)


class _Context:
    def __init__(self, *, step: str, call_id: str, params: Params, workspace: PurePosixPath | None) -> None:
        self.step = step
        self.call_id = call_id
        self.params = params
        self.workspace = workspace
        self.thread_id = _str(params, "threadId")

    def common(self, turn_id: str) -> dict[str, str]:
        return {
            "tool_call_id": self.call_id,
            "step": self.step,
            "thread_id": self.thread_id,
            "turn_id": turn_id,
        }

    def rel(self, path: str) -> str:
        """``path`` relative to the workspace when it is inside it (records keep workspace-relative paths)."""
        if self.workspace is None or not path.startswith("/"):
            return path
        try:
            inner = PurePosixPath(path).relative_to(self.workspace)
        except ValueError:
            return path
        return str(inner) if str(inner) != "" else "."


def _turn_started(ctx: _Context) -> list[AgentEvent]:
    turn = _map(ctx.params, "turn")
    return [AgentTurnStarted(**ctx.common(_str(turn, "id")))]


def _turn_completed(ctx: _Context) -> list[AgentEvent]:
    turn = _map(ctx.params, "turn")
    error = _map(turn, "error")
    message = _str(error, "message")
    details = _str(error, "additionalDetails")
    duration = turn.get("durationMs")
    return [
        AgentTurnFinished(
            **ctx.common(_str(turn, "id")),
            status=_TURN_STATUS.get(_str(turn, "status"), "other"),
            error=(f"{message}: {details}" if details else message) or None,
            duration_ms=float(duration) if isinstance(duration, int | float) else None,
        )
    ]


def _item_completed(ctx: _Context) -> list[AgentEvent]:
    item = _map(ctx.params, "item")
    kind = _str(item, "type")
    base = {**ctx.common(_str(ctx.params, "turnId")), "item_id": _str(item, "id")}
    status = _ITEM_STATUS.get(_str(item, "status"), "other")
    if kind == "agentMessage":
        text, omitted = clip(_str(item, "text"))
        return [AgentMessage(**base, text=text, omitted_bytes=omitted)]
    if kind == "reasoning":
        summary = "\n".join(s for s in _list(item, "summary") if isinstance(s, str))
        return [AgentReasoning(**base, summary=summary)] if summary else []
    if kind == "commandExecution":
        output, omitted = clip(_str(item, "aggregatedOutput"))
        exit_code = item.get("exitCode")
        duration = item.get("durationMs")
        return [
            AgentCommand(
                **base,
                command=inner_command(_str(item, "command")),  # as its tool call shows it: no shell wrapper
                cwd=ctx.rel(_str(item, "cwd")),
                status=status,
                exit_code=exit_code if isinstance(exit_code, int) else None,
                duration_ms=float(duration) if isinstance(duration, int | float) else None,
                output=output,
                omitted_bytes=omitted,
            )
        ]
    if kind == "fileChange":
        return [
            AgentFileChange(**base, status=status, changes=[_diff(ctx, c) for c in _maps(item, "changes")])
        ]
    if kind == "mcpToolCall":
        tool = f"mcp:{_str(item, 'server')}/{_str(item, 'tool')}"
        return [AgentToolUse(**base, tool=tool, status=status, detail=_str(_map(item, "error"), "message"))]
    if kind == "dynamicToolCall":
        namespace = _str(item, "namespace")
        tool = f"dynamic:{namespace + '/' if namespace else ''}{_str(item, 'tool')}"
        return [AgentToolUse(**base, tool=tool, status=status)]
    if kind == "webSearch":
        return [AgentToolUse(**base, tool="web_search", status="completed", detail=_str(item, "query"))]
    return []  # the user's own message, context compaction, review mode, ...: not the agent's doing


def _diff(ctx: _Context, change: Mapping[str, Any]) -> AgentFileDiff:
    kind = _map(change, "kind")
    name = _str(kind, "type")
    move = kind.get("move_path")
    diff, omitted = clip(_str(change, "diff"))
    return AgentFileDiff(
        path=ctx.rel(_str(change, "path")),
        kind=_PATCH_KINDS.get(name, "other"),
        move_path=ctx.rel(move) if isinstance(move, str) else None,
        diff=diff,
        omitted_bytes=omitted,
    )


def _plan_updated(ctx: _Context) -> list[AgentEvent]:
    explanation = ctx.params.get("explanation")
    steps = [
        AgentPlanStep(step=_str(s, "step"), status=_PLAN_STATUS.get(_str(s, "status"), "other"))
        for s in _maps(ctx.params, "plan")
    ]
    return [
        AgentPlan(
            **ctx.common(_str(ctx.params, "turnId")),
            explanation=explanation if isinstance(explanation, str) else None,
            steps=steps,
        )
    ]


def _tokens(ctx: _Context) -> list[AgentEvent]:
    usage = _map(ctx.params, "tokenUsage")
    window = usage.get("modelContextWindow")
    return [
        AgentTokens(
            **ctx.common(_str(ctx.params, "turnId")),
            total=token_counts(_map(usage, "total")),
            last=token_counts(_map(usage, "last")),
            context_window=window if isinstance(window, int) else None,
        )
    ]


def token_counts(breakdown: Mapping[str, Any]) -> AgentTokenCounts:
    """codex's ``TokenUsageBreakdown`` as our counts (a missing count is 0)."""
    return AgentTokenCounts(
        input=_int(breakdown, "inputTokens"),
        cached_input=_int(breakdown, "cachedInputTokens"),
        output=_int(breakdown, "outputTokens"),
        reasoning_output=_int(breakdown, "reasoningOutputTokens"),
        total=_int(breakdown, "totalTokens"),
    )


def _error(ctx: _Context) -> list[AgentEvent]:
    error = _map(ctx.params, "error")
    message = _str(error, "message")
    details = _str(error, "additionalDetails")
    return [
        AgentError(
            **ctx.common(_str(ctx.params, "turnId")),
            message=f"{message}: {details}" if details else message,
            will_retry=ctx.params.get("willRetry") is True,
        )
    ]


_HANDLERS: dict[str, Callable[[_Context], list[AgentEvent]]] = {
    "turn/started": _turn_started,
    "turn/completed": _turn_completed,
    "item/completed": _item_completed,
    "turn/plan/updated": _plan_updated,
    "thread/tokenUsage/updated": _tokens,
    "error": _error,
}
# The notifications that give events: a driver may skip the others without calling (they give none).
TRANSCRIBED_METHODS = frozenset(_HANDLERS)


def clip(text: str, budget_bytes: int = AGENT_TEXT_BUDGET_BYTES) -> tuple[str, int]:
    """``text`` within ``budget_bytes`` of UTF-8: its head and tail halves, and how many bytes were left out."""
    data = text.encode("utf-8")
    if len(data) <= budget_bytes:
        return text, 0
    half = budget_bytes // 2
    head = data[:half].decode("utf-8", errors="ignore")
    tail = data[len(data) - half :].decode("utf-8", errors="ignore")
    omitted = len(data) - len(head.encode("utf-8")) - len(tail.encode("utf-8"))
    return f"{head}\n[… {omitted} bytes omitted …]\n{tail}", omitted


def _root(workspace: str | os.PathLike[str] | None) -> PurePosixPath | None:
    return None if workspace is None else PurePosixPath(os.path.abspath(os.fspath(workspace)))


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _map(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []


def _maps(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return [v for v in _list(data, key) if isinstance(v, Mapping)]
