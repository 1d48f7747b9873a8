"""The manifest's per-agent-step summaries (``Manifest.agents``), folded from the run's ``agent.*`` events and
the records of the tool calls each agent made.

``AgentEventsReader`` reads the event log incrementally (only the bytes appended since its last read, only the
lines of ``agent.*`` events), so a fold stays flat per call as the log grows; ``agent_steps`` is pure: the same
events and call records give the same summaries, which keeps ``manifest --rebuild`` byte-identical.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_orchestrator.records.manifest import (
    FINAL_CALL_STATUSES,
    AgentStepRecord,
    AgentTokenTotals,
    AgentToolCallRef,
)

# The line of an agent event, as the log writes it (compact JSON): a cheap test before parsing a line.
_AGENT_TYPE_MARK = b'"type":"agent.'
_READ_BLOCK_BYTES = 1 << 20
# A final message in the manifest keeps this much (the transcript artifact and the events have all of it).
FINAL_MESSAGE_CHARS = 2000
_TOKEN_FIELDS = ("input", "cached_input", "output", "reasoning_output", "total")


@dataclass
class _Step:
    """What the events of one agent step said so far."""

    call_id: str
    step: str
    agent: str = ""
    agent_version: str = ""
    thread_id: str | None = None
    finished: str | None = None
    resumed: int = 0
    turns: int = 0
    commands: int = 0
    file_changes: int = 0
    messages: int = 0
    errors: int = 0
    tokens: Counter[str] = field(default_factory=Counter)
    final_message: str | None = None
    error: str | None = None

    def add(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "agent.started":
            self.agent = str(event.get("agent") or "")
            self.agent_version = str(event.get("agent_version") or "")
            self.thread_id = str(event.get("thread_id") or "") or None
            self.resumed += 1 if event.get("resumed") else 0
            self.finished = None  # a resumed step is running again
        elif kind == "agent.turn.finished":
            self.turns += 1
        elif kind == "agent.command":
            self.commands += 1
        elif kind == "agent.file_change":
            self.file_changes += 1
        elif kind == "agent.message":
            self.messages += 1
            self.final_message = str(event.get("text") or "")[:FINAL_MESSAGE_CHARS]
        elif kind == "agent.error":
            self.errors += 1
        elif kind == "agent.tokens":
            last = event.get("last")
            if isinstance(last, Mapping):
                for name in _TOKEN_FIELDS:
                    value = last.get(name)
                    self.tokens[name] += value if isinstance(value, int) else 0
        elif kind == "agent.finished":
            self.finished = str(event.get("status") or "failed")
            self.error = event.get("error") if isinstance(event.get("error"), str) else None


class AgentEventsReader:
    """This process's view of a run's agent events: reads what was appended to ``events.jsonl`` since last time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._steps: dict[str, _Step] = {}

    def update(self) -> None:
        """Take in the whole lines appended since the last read (a torn last line waits for its end)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            size = os.fstat(fd).st_size
            if size < self._offset:  # a different log (rebuilt from scratch): start over
                self._offset, self._steps = 0, {}
            while self._offset < size:
                want = _READ_BLOCK_BYTES
                while True:  # a whole line at least: a block grows until it holds one (or the log ends)
                    block = os.pread(fd, min(want, size - self._offset), self._offset)
                    last = block.rfind(b"\n")
                    if last >= 0 or self._offset + len(block) >= size:
                        break
                    want *= 2
                if last < 0:
                    return  # only a line still being written
                self._take(block[: last + 1])
                self._offset += last + 1
        finally:
            os.close(fd)

    def _take(self, data: bytes) -> None:
        if _AGENT_TYPE_MARK not in data:
            return
        for line in data.split(b"\n"):
            if _AGENT_TYPE_MARK not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line torn by a killed writer
            if isinstance(event, dict):
                self.add(event)

    def add(self, event: Mapping[str, Any]) -> None:
        call_id = str(event.get("tool_call_id") or "")
        if not call_id:
            return
        step = self._steps.get(call_id)
        if step is None:
            step = self._steps[call_id] = _Step(call_id=call_id, step=str(event.get("step") or ""))
        step.add(event)

    def steps(self, calls: Iterable[Mapping[str, Any]]) -> list[AgentStepRecord]:
        """The summaries, given every call record of the run (dicts, in the manifest's order)."""
        return agent_steps(self._steps.values(), list(calls))


def agent_steps(steps: Iterable[_Step], calls: list[Mapping[str, Any]]) -> list[AgentStepRecord]:
    """One summary per agent step that logged agent events, in the order of its call among the calls."""
    by_id = {str(c.get("id")): c for c in calls}
    order = {call_id: index for index, call_id in enumerate(by_id)}
    out: list[AgentStepRecord] = []
    for step in sorted(steps, key=lambda s: (order.get(s.call_id, len(order)), s.call_id)):
        own = [c for c in calls if _made_by(c, step.call_id)]
        refs = [
            AgentToolCallRef(
                id=str(c.get("id")),
                kind=str(c.get("kind") or ""),
                command=str(c.get("command") or ""),
                status=c.get("status") or "pending",
                approval_source=c.get("approval_source"),
                error=c.get("error"),
            )
            for c in own
        ]
        out.append(
            AgentStepRecord(
                call_id=step.call_id,
                step=step.step,
                agent=step.agent,
                agent_version=step.agent_version,
                thread_id=step.thread_id,
                status=_status(step, by_id.get(step.call_id)),
                resumed=step.resumed,
                turns=step.turns,
                tool_calls=refs,
                tool_calls_by_status=dict(sorted(Counter(r.status for r in refs).items())),
                commands=step.commands,
                file_changes=step.file_changes,
                messages=step.messages,
                errors=step.errors,
                tokens=AgentTokenTotals(**{name: step.tokens[name] for name in _TOKEN_FIELDS}),
                final_message=step.final_message,
                error=step.error if step.finished is not None else _call_error(by_id.get(step.call_id)),
            )
        )
    return out


def _made_by(call: Mapping[str, Any], step_call_id: str) -> bool:
    parent = call.get("parent_call_id")
    return parent == step_call_id


def _status(step: _Step, call: Mapping[str, Any] | None) -> Any:
    if step.finished is not None:
        return step.finished
    # No agent.finished: still running, unless the step's call is over (its process was killed, say).
    if call is not None and call.get("status") in FINAL_CALL_STATUSES:
        return "failed"
    return "running"


def _call_error(call: Mapping[str, Any] | None) -> str | None:
    if call is None or call.get("status") not in FINAL_CALL_STATUSES:
        return None
    error = call.get("error")
    return error if isinstance(error, str) else "the agent step ended without the agent finishing"
