"""The approval pause: a RunInput form in the Prefect UI, and the public API that answers it from code or the CLI.

Who answered (``answered_by``) is established by the channel, never typed: the UI form has only ``decision``,
``reason`` and a ``reviewer`` name; ``answer_approval`` (CLI, SDK, terminal, scripted reviewer) writes its channel
under a second flow-run input key before it resumes, which a form submission cannot do; without that key the
answer came from the Prefect UI. Once read, the answer and the channel key are deleted from Prefect's database:
the records keep the reason, redacted.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from typing import cast
from uuid import UUID

import httpx
from prefect import flow, get_run_logger, tags
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout, ObjectNotFound, PrefectHTTPStatusError
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput, keyset_from_paused_state
from prefect.input.run_input import Keyset
from prefect.settings import PREFECT_UI_URL
from prefect.states import Paused, Running
from pydantic import BaseModel, ConfigDict, Field

from codex_orchestrator.approvals import (
    ANSWER_CHANNELS,
    UI_CHANNEL,
    Announce,
    ApprovalAnswer,
    ApprovalRequest,
    Decision,
    flow_run_url,
    pause_notice,
)
from codex_orchestrator.errors import OrchestratorError, RequestError
from flows.tracing import prefect_children_under_current_span
from tasks.log_hygiene import PAUSE_NOTICE

# Approval must resolve within ~2 s of the answer; Prefect's default poll is 10 s.
PAUSE_POLL_INTERVAL_S = 1
# How long an answer keeps trying while the flow run is still on its way into the Paused state.
RESUME_WAIT_S = 30.0


class ApprovalChoice(StrEnum):
    approve = "approve"
    approve_for_session = "approve-for-session"
    approve_and_remember = "approve-and-remember"
    deny = "deny"


class ApprovalInput(RunInput):
    """The Resume form in the Prefect UI."""

    decision: ApprovalChoice = Field(
        default=ApprovalChoice.deny,
        description="approve, approve-for-session (cache for this run), approve-and-remember (append an "
        "allow rule to the rules file) or deny",
    )
    reason: str = Field(default="", description="optional: why (recorded in the manifest, secrets redacted)")
    reviewer: str = Field(default="", description="optional: your name, recorded with the answer")


class ApprovalWait(BaseModel):
    """The parameters of one approval's flow run: what the Prefect UI shows. Already redacted; no secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    task_id: str
    approval_id: str
    step: str
    description: str = Field(description="the question, as Markdown")
    command: str = Field(default="", description="the command asked about (redacted)")
    reason: str = ""
    timeout_s: int
    pause_key: str

    def request(self) -> ApprovalRequest:
        return ApprovalRequest(
            approval_id=self.approval_id,
            run_id=self.run_id,
            task_id=self.task_id,
            tool_call_id="",
            step=self.step,
            tool="",
            command=self.command,
            cwd="",
            needs=(),
            reason=self.reason,
        )


# The gate's announce hook for the approval flow run about to pause (same process, same thread): flow
# parameters are data, so the hook travels beside them.
_ANNOUNCE: ContextVar[Announce | None] = ContextVar("codex_orchestrator_announce", default=None)


class PrefectPauseApprover:
    """Asks by running one ``approval`` flow run per question, which pauses with
    ``pause_flow_run(wait_for_input=ApprovalInput)`` until answered. Several calls can wait at once, each in
    its own paused flow run, and a waiting call holds no PTY (it asks before anything is spawned)."""

    def ask(self, request: ApprovalRequest, announce: Announce) -> ApprovalAnswer:
        params = ApprovalWait(
            run_id=request.run_id,
            task_id=request.task_id,
            approval_id=request.approval_id,
            step=request.step,
            description=request.markdown(),
            command=request.command,
            reason=request.reason,
            timeout_s=request.timeout_s,
            pause_key=pause_key(request),
        )
        token = _ANNOUNCE.set(announce)
        try:
            # The approval flow run's span nests under the gate's approval span (flows/tracing.py).
            with tags(*run_tags(request.run_id), APPROVAL_TAG), prefect_children_under_current_span():
                result = approval(params)
        finally:
            _ANNOUNCE.reset(token)
        return ApprovalAnswer(
            Decision(str(result["decision"])),
            reason=str(result.get("reason") or "") or None,
            answered_by=str(result.get("answered_by") or "prefect-ui"),
            reviewer=str(result.get("reviewer") or "") or None,
            timed_out=bool(result.get("timed_out")),
        )


@flow(name="approval", flow_run_name="approval-{params.approval_id}", persist_result=False)
def approval(params: ApprovalWait) -> dict[str, object]:
    """One approval question: pauses this flow run until someone answers it (or the timeout denies it)."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:  # pragma: no cover - a flow always has its context
        return {"decision": Decision.DENY.value, "reason": "not inside a flow run", "answered_by": "none"}
    flow_run_id = context.flow_run.id
    announce = _ANNOUNCE.get()
    if announce is not None:
        announce(str(flow_run_id))
    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    url = flow_run_url(api_url, str(flow_run_id), PREFECT_UI_URL.value())
    get_run_logger().info(pause_notice(params.request(), url), extra={PAUSE_NOTICE: True})
    form = ApprovalInput.with_initial_data(description=params.description, decision=ApprovalChoice.deny)
    try:
        answer = pause_flow_run(
            wait_for_input=form,
            timeout=params.timeout_s,
            poll_interval=PAUSE_POLL_INTERVAL_S,
            key=params.pause_key,
        )
    except FlowPauseTimeout:
        resume_after_timeout(flow_run_id)
        return {
            "decision": Decision.DENY.value,
            "reason": f"no answer within {params.timeout_s} s",
            "answered_by": "timeout",
            "timed_out": True,
        }
    # The channel is what our own answerers wrote beside the form; the stored answer is then deleted.
    channel = take_answer(flow_run_id, keyset_from_paused_state(Paused(pause_key=params.pause_key)))
    return {
        "decision": answer.decision.value,
        "reason": answer.reason or None,
        "answered_by": channel,
        "reviewer": answer.reviewer or None,
    }


APPROVAL_TAG = "codex-approval"


def run_tags(run_id: str) -> tuple[str, ...]:
    """Tags that let ``approve`` find a run's paused approvals through the Prefect API alone."""
    return (f"codex-run:{run_id}",)


def pause_key(request: ApprovalRequest) -> str:
    """Prefect input keys allow only lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{request.run_id}-{request.approval_id}".lower())


def channel_key(keyset: Keyset) -> str:
    """The flow-run input key next to the answer's where ``answer_approval`` names its channel."""
    return keyset["response"].removesuffix("-response") + "-channel"


def take_answer(flow_run_id: UUID, keyset: Keyset) -> str:
    """Read the answer's channel, then delete the answer and the channel key from Prefect's database."""
    with get_client(sync_client=True) as client:
        written = _read_input(client, flow_run_id, channel_key(keyset))
        for key in (keyset["response"], channel_key(keyset)):
            _delete_input(client, flow_run_id, key)
    channel = json.loads(written) if written else None
    return channel if channel in ANSWER_CHANNELS else UI_CHANNEL


def _read_input(client: SyncPrefectClient, flow_run_id: UUID, key: str) -> str | None:
    try:
        return client.read_flow_run_input(flow_run_id, key)
    except (ObjectNotFound, PrefectHTTPStatusError) as exc:
        if _not_found(exc):
            return None
        raise


def _delete_input(client: SyncPrefectClient, flow_run_id: UUID, key: str) -> None:
    try:
        client.delete_flow_run_input(flow_run_id, key)
    except (ObjectNotFound, PrefectHTTPStatusError) as exc:
        if not _not_found(exc):
            raise


def _not_found(exc: Exception) -> bool:
    """The input API answers a missing key with a plain 404, not ``ObjectNotFound``."""
    return isinstance(exc, ObjectNotFound) or (
        isinstance(exc, PrefectHTTPStatusError) and exc.response.status_code == 404
    )


def resume_after_timeout(flow_run_id: UUID) -> None:
    """A timed-out pause leaves the run Paused; put it back to Running so the rest of the run can go on."""
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Running(), force=True)


@contextmanager
def _api_url(api_url: str | None) -> Iterator[None]:
    """Talk to the Prefect API that holds the run (recorded in its manifest) unless one is configured."""
    if not api_url or os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        yield


def answer_approval(
    flow_run_id: str,
    decision: Decision,
    *,
    reason: str | None = None,
    reviewer: str | None = None,
    answered_by: str = "sdk",
    api_url: str | None = None,
    wait_s: float = RESUME_WAIT_S,
    redact: Callable[[str], str] = lambda text: text,
) -> None:
    """Answer a paused approval through ``answered_by`` (cli, terminal, sdk, auto-reviewer).

    ``redact`` scrubs the reason and reviewer before they are sent (the run's redactor, where it is known).
    Waits up to ``wait_s`` for the flow run to finish pausing."""
    if answered_by not in ANSWER_CHANNELS:
        raise RequestError(
            f"unknown channel {answered_by!r}", field="answered_by", allowed=", ".join(ANSWER_CHANNELS)
        )
    run_input = {
        "decision": decision.value,
        "reason": redact(reason or ""),
        "reviewer": redact(reviewer or ""),
    }
    resume_with_input(flow_run_id, run_input, answered_by=answered_by, api_url=api_url, wait_s=wait_s)


def resume_with_input(
    flow_run_id: str,
    run_input: dict[str, str],
    *,
    answered_by: str,
    api_url: str | None = None,
    wait_s: float = RESUME_WAIT_S,
) -> None:
    """Resume a flow run paused for input with ``run_input``, naming the channel beside it (approvals and
    the review both answer this way). Waits up to ``wait_s`` for the flow run to finish pausing."""
    run_uuid = UUID(flow_run_id)
    deadline = time.monotonic() + wait_s
    with _api_url(api_url), get_client(sync_client=True) as client:
        while True:
            try:
                problem = _try_resume(client, run_uuid, answered_by, run_input)
            except ObjectNotFound as exc:
                raise RequestError(
                    f"no flow run {flow_run_id} on this Prefect server", field="run_id"
                ) from exc
            except httpx.HTTPError as exc:  # the server is busy or restarting: try again until the deadline
                problem = f"{type(exc).__name__}: {exc}"
            if problem is None:
                return
            if time.monotonic() >= deadline:
                raise ApprovalAnswerError(flow_run_id, problem)
            time.sleep(0.2)


def _try_resume(
    client: SyncPrefectClient, flow_run_id: UUID, channel: str, run_input: dict[str, str]
) -> str | None:
    """One try: name the channel next to the answer, then resume. Returns what stood in the way, or None."""
    flow_run = client.read_flow_run(flow_run_id)
    state = flow_run.state
    keyset = state.state_details.run_input_keyset if state is not None and state.is_paused() else None
    if keyset is None:
        return f"the flow run is not paused for input (state: {state.type.value if state else 'none'})"
    key = channel_key(cast(Keyset, keyset))
    _delete_input(client, flow_run_id, key)  # left by an earlier try whose resume was refused
    client.create_flow_run_input(flow_run_id, key, json.dumps(channel))
    response = client.resume_flow_run(flow_run_id, run_input=run_input)
    if response.status == SetStateStatus.ACCEPT:
        return None
    reason = getattr(response.details, "reason", None) or response.status.value
    if response.state is not None and response.state.type == StateType.FAILED:
        raise ApprovalAnswerError(str(flow_run_id), f"the flow run can no longer be resumed: {reason}")
    return f"resume refused: {reason}"


class ApprovalAnswerError(OrchestratorError):
    def __init__(self, flow_run_id: str, detail: str) -> None:
        self.flow_run_id = flow_run_id
        super().__init__(f"could not answer the approval of flow run {flow_run_id}: {detail}")


def paused_approvals(run_id: str) -> list[tuple[str, str]]:
    """``(approval id, flow run id)`` of every approval of ``run_id`` paused on the configured Prefect API:
    how ``approve`` answers a run whose records are on another machine."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )

    flow_filter = FlowRunFilter(
        tags=FlowRunFilterTags(all_=[*run_tags(run_id), APPROVAL_TAG]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
    )
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=flow_filter)
    return sorted((run.name.removeprefix("approval-"), str(run.id)) for run in runs)
