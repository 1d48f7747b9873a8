"""The ``agent.*`` events: what a coding agent did inside an agent step, as lines of the run's event log.

agents/transcript.py builds them from the agent's own notifications (codex app-server's ``item/completed``,
``turn/completed``, ``thread/tokenUsage/updated``, ...). Each carries the agent step's own ``tool_call_id``;
the agent's tool calls (each command or patch it asked to run) are tool calls of their own, with their
``tool_call.*`` events, whose records name the step's call as ``agent_call_id``. Texts longer than
``AGENT_TEXT_BUDGET_BYTES`` keep their head and tail and count what was left out (``omitted_bytes``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from codex_orchestrator.records.event_base import _Event

# One text of an agent event (a message, a command's output, a file's diff) keeps at most this much.
AGENT_TEXT_BUDGET_BYTES = 64 * 1024

ItemStatus = Literal["completed", "failed", "declined", "in-progress", "other"]


class _Part(BaseModel):
    # No defaults here, every field is given: pydantic 2.14 cannot make the schema of a nested model that has
    # defaults under json_schema_serialization_defaults_required (a KeyError on its "-Output" ref).
    model_config = ConfigDict(extra="forbid", defer_build=True)


class _AgentEvent(_Event):
    tool_call_id: str = Field(description="the agent step's own tool call")
    step: str = Field(description="the agent step's name")
    thread_id: str = Field(description="the agent's thread (codex: the app-server thread id)")


class _TurnEvent(_AgentEvent):
    turn_id: str


class _ItemEvent(_TurnEvent):
    item_id: str = Field(description="the agent's id of this item in its thread")


class AgentStarted(_AgentEvent):
    """The agent step started its agent's thread, or resumed an earlier run's."""

    type: Literal["agent.started"] = "agent.started"
    agent: str = Field(description="which agent, e.g. codex")
    agent_version: str
    resumed: bool = Field(description="an earlier run's thread was resumed, not a new one started")


class AgentTurnStarted(_TurnEvent):
    type: Literal["agent.turn.started"] = "agent.turn.started"


class AgentTurnFinished(_TurnEvent):
    type: Literal["agent.turn.finished"] = "agent.turn.finished"
    status: Literal["completed", "failed", "interrupted", "other"]
    error: str | None = None
    duration_ms: float | None = Field(default=None, description="as the agent measured it")


class AgentMessage(_ItemEvent):
    """A message of the agent to the user; the last one of a turn is its answer."""

    type: Literal["agent.message"] = "agent.message"
    text: str
    omitted_bytes: int = Field(default=0, description="bytes left out of the middle of the text (budget)")


class AgentReasoning(_ItemEvent):
    """The summary of its reasoning the agent chose to show (never raw reasoning)."""

    type: Literal["agent.reasoning"] = "agent.reasoning"
    summary: str


class AgentCommand(_ItemEvent):
    """A command the agent ran or tried, as it reports it once over (the gated tool call is recorded apart)."""

    type: Literal["agent.command"] = "agent.command"
    command: str
    cwd: str
    status: ItemStatus
    exit_code: int | None = None
    duration_ms: float | None = None
    output: str = Field(description="the output as the agent saw it: head and tail within the budget")
    omitted_bytes: int = Field(default=0, description="bytes left out of the middle of the output (budget)")


class AgentFileDiff(_Part):
    path: str
    kind: Literal["add", "delete", "update", "other"]
    move_path: str | None
    diff: str
    omitted_bytes: int


class AgentFileChange(_ItemEvent):
    """A patch the agent applied or tried, one diff per file."""

    type: Literal["agent.file_change"] = "agent.file_change"
    status: ItemStatus
    changes: list[AgentFileDiff]


class AgentToolUse(_ItemEvent):
    """Another tool of the agent's (an MCP tool, a web search, a dynamic tool), by name and outcome."""

    type: Literal["agent.tool"] = "agent.tool"
    tool: str = Field(description="mcp:<server>/<tool>, web_search or dynamic:<tool>")
    status: ItemStatus
    detail: str = ""


class AgentPlanStep(_Part):
    step: str
    status: Literal["pending", "in-progress", "completed", "other"]


class AgentPlan(_TurnEvent):
    """The agent's plan for the turn, each time it changes."""

    type: Literal["agent.plan"] = "agent.plan"
    explanation: str | None = None
    steps: list[AgentPlanStep]


class AgentTokenCounts(_Part):
    input: int
    cached_input: int
    output: int
    reasoning_output: int
    total: int


class AgentTokens(_TurnEvent):
    """Token usage after a model response: ``total`` so far in the thread, ``last`` for that response."""

    type: Literal["agent.tokens"] = "agent.tokens"
    total: AgentTokenCounts
    last: AgentTokenCounts
    context_window: int | None = None


class AgentError(_TurnEvent):
    """The agent reported an error (e.g. its model endpoint failed); ``will_retry``: it tries again itself."""

    type: Literal["agent.error"] = "agent.error"
    message: str
    will_retry: bool


class AgentFinished(_Event):
    """The agent step's agent is done: its turn completed, failed or was interrupted."""

    type: Literal["agent.finished"] = "agent.finished"
    tool_call_id: str
    step: str
    status: Literal["completed", "failed", "interrupted"]
    turns: int
    error: str | None = None


AgentEvent = (
    AgentStarted
    | AgentTurnStarted
    | AgentTurnFinished
    | AgentMessage
    | AgentReasoning
    | AgentCommand
    | AgentFileChange
    | AgentToolUse
    | AgentPlan
    | AgentTokens
    | AgentError
    | AgentFinished
)
AGENT_EVENT_PREFIX = "agent."  # every agent event's type starts with it (the manifest's fold looks for it)
