"""The Prefect side of notifications: deliver to saved notification blocks and as Prefect events, and the
shipped automation "tell someone when an approval has waited longer than N minutes".

Importing this module installs the delivery into the core (``codex_orchestrator.notify``): any process that
runs our flows or tasks has it. The automation is a proactive trigger on our own events — after
``codex-orchestrator.approval.requested``, expect ``codex-orchestrator.approval.resolved`` for the same
approval (the event's resource) within N seconds — whose action sends a notification through a block.
"""

from __future__ import annotations

import asyncio
import inspect
from datetime import timedelta
from typing import Any, cast
from uuid import UUID

from prefect.automations import Automation
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block
from prefect.events import emit_event
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture

from codex_orchestrator.errors import RequestError
from codex_orchestrator.notify import (
    PREFECT_EVENT_PREFIX,
    Notification,
    NotificationEvent,
    NotificationFailed,
    NotificationTarget,
    install_prefect_delivery,
)

APPROVAL_WAIT_AUTOMATION = "codex-orchestrator-approval-waiting"
# Prefect refuses a proactive trigger's `within` under 10 s.
MIN_WITHIN_S = 10


def deliver_prefect(target: NotificationTarget, notification: Notification) -> None:
    """A block target: ``Block.load(name).notify(body, subject)``; an event target: ``emit_event``."""
    if target.block is not None:
        block = _notification_block(target.block)
        try:
            # Concrete blocks dispatch to their sync variant outside an event loop (this worker thread).
            result: Any = cast(Any, block).notify(notification.body(), notification.subject())
            if inspect.isawaitable(result):
                asyncio.run(_wait(result))
        except (
            Exception
        ) as exc:  # any block's own failure (HTTP status, Apprise, ...): recorded, never raised
            raise NotificationFailed(target.label, f"{type(exc).__name__}: {exc}") from exc
        return
    resource: dict[str, str] = {
        "prefect.resource.id": notification.resource_id(),
        "prefect.resource.name": f"{notification.task_id}/{notification.run_id}",
        "codex.run_id": notification.run_id,
        "codex.task_id": notification.task_id,
    }
    related: list[dict[str, str]] = []
    flow_run_id = notification.details.get("flow_run_id")
    if flow_run_id:
        related.append(
            {"prefect.resource.id": f"prefect.flow-run.{flow_run_id}", "prefect.resource.role": "flow-run"}
        )
    try:
        sent = emit_event(
            event=PREFECT_EVENT_PREFIX + notification.event.value,
            resource=resource,
            related=related,
            payload=notification.payload(),
        )
    except Exception as exc:  # the events client's own failure
        raise NotificationFailed(target.label, f"{type(exc).__name__}: {exc}") from exc
    if sent is None:
        raise NotificationFailed(target.label, "Prefect events are not enabled here (no Prefect API URL)")


async def _wait(awaitable: Any) -> None:
    await awaitable


def _notification_block(name: str) -> NotificationBlock:
    try:
        block = Block.load(name)
    except Exception as exc:  # not found, not registered, no API: all mean "cannot load"
        raise NotificationFailed(f"block:{name}", f"cannot load the block: {exc}") from exc
    if not isinstance(block, NotificationBlock):
        raise NotificationFailed(f"block:{name}", f"{type(block).__name__} is not a notification block")
    return block


install_prefect_delivery(deliver_prefect)


def approval_wait_trigger(within_s: int) -> EventTrigger:
    """Fires for each approval still unanswered ``within_s`` seconds after it was asked."""
    if within_s < MIN_WITHIN_S:
        raise RequestError(f"must be at least {MIN_WITHIN_S} s (Prefect's minimum)", field="--after")
    return EventTrigger(
        posture=Posture.Proactive,
        match={"prefect.resource.id": f"{PREFECT_EVENT_PREFIX}approval.*"},
        after={PREFECT_EVENT_PREFIX + NotificationEvent.APPROVAL_REQUESTED.value},
        expect={PREFECT_EVENT_PREFIX + NotificationEvent.APPROVAL_RESOLVED.value},
        for_each={"prefect.resource.id"},
        threshold=1,
        within=timedelta(seconds=within_s),
    )


def approval_wait_automation(
    block_name: str, within_s: int, name: str = APPROVAL_WAIT_AUTOMATION
) -> Automation:
    """The automation, not yet saved: its action notifies through the saved block ``block_name``."""
    block = _notification_block(block_name)
    block_id = cast(UUID | None, getattr(block, "_block_document_id", None))
    if block_id is None:
        raise RequestError(f"block {block_name!r} is not saved on this Prefect server", field="--block")
    minutes = f"{within_s / 60:g} minute(s)"
    return Automation(
        name=name,
        description=f"codex-orchestrator: an approval has waited longer than {minutes}",
        trigger=approval_wait_trigger(within_s),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject=f"codex-orchestrator: an approval has waited longer than {minutes}",
                body="Still waiting for an answer: {{ labels.prefect.resource.id }} "
                "(codex-orchestrator.approval.<run id>.<approval id>). "
                "Answer it in the Prefect UI or with `codex-orchestrator approve`.",
            )
        ],
    )


def ensure_approval_wait_automation(
    block_name: str, within_s: int, name: str = APPROVAL_WAIT_AUTOMATION
) -> dict[str, Any]:
    """Create the automation on the current Prefect server, replacing one of the same name."""
    wanted = approval_wait_automation(block_name, within_s, name)
    try:
        existing: Automation | None = cast(Automation, Automation.read(name=name))
    except ValueError:
        existing = None
    if existing is not None:
        existing.delete()
    created = cast(Automation, wanted.create())
    return {"id": str(created.id), "name": created.name, "within_s": within_s, "block": block_name}
