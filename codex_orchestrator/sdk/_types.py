"""Typed events for code that wants more than dicts: the same pydantic models the CLI writes them from.

``typed_event(event)`` turns one event dict of a handle's stream into its model (``records/events.py``:
``ToolCallStarted``, ``Summary``, the agent step's ``AgentCommand``, ``AgentFileChange``, ``AgentTokens``, ...), so
``isinstance`` narrows it and its fields are checked. pydantic is imported on first use, not with the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codex_orchestrator.sdk._shared import Event, SdkError

if TYPE_CHECKING:
    from codex_orchestrator.records.events import _Event


def typed_event(event: Event) -> _Event:
    """The model of ``event`` (a dict from ``events()``); SdkError names what does not fit the schema."""
    from pydantic import ValidationError

    from codex_orchestrator.records.events import EVENT_ADAPTER

    try:
        return EVENT_ADAPTER.validate_python(event)
    except ValidationError as exc:
        raise SdkError(
            f"event {event.get('seq')} ({event.get('type')}) does not fit the schema: {exc}"
        ) from exc
