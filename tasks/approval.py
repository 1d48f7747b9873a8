"""The approval pause: a RunInput form in the Prefect UI, and the public API that answers it from code or the CLI."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout, ObjectNotFound
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.input import RunInput
from prefect.states import Running
from pydantic import Field

from codex_orchestrator.approvals import Announce, ApprovalAnswer, ApprovalRequest, Decision
from codex_orchestrator.errors import OrchestratorError, RequestError

# Approval must resolve within ~2 s of the answer; Prefect's default poll is 10 s.
PAUSE_POLL_INTERVAL_S = 1
# How long an answer keeps trying while the flow run is still on its way into the Paused state.
RESUME_WAIT_S = 30.0


class ApprovalChoice(StrEnum):
    approve = "approve"
    approve_for_session = "approve-for-session"
    deny = "deny"


class ApprovalInput(RunInput):
    """The Resume form in the Prefect UI."""

    decision: ApprovalChoice = Field(
        default=ApprovalChoice.deny, description="approve, approve-for-session (cache for this run) or deny"
    )
    reason: str = Field(default="", description="optional: why (recorded in the manifest)")
    answered_by: str = Field(default="prefect-ui", description="who answers: prefect-ui, cli, terminal, sdk")


class PrefectPauseApprover:
    """Asks by pausing the current flow run with ``pause_flow_run(wait_for_input=ApprovalInput)``."""

    def ask(self, request: ApprovalRequest, announce: Announce) -> ApprovalAnswer:
        context = FlowRunContext.get()
        if context is None or context.flow_run is None:
            return ApprovalAnswer(
                Decision.DENY, reason="not inside a Prefect flow run: nobody can be asked", answered_by="none"
            )
        flow_run_id = context.flow_run.id
        announce(str(flow_run_id))
        form = ApprovalInput.with_initial_data(description=request.markdown(), decision=ApprovalChoice.deny)
        try:
            answer = pause_flow_run(
                wait_for_input=form,
                timeout=request.timeout_s,
                poll_interval=PAUSE_POLL_INTERVAL_S,
                key=pause_key(request),
            )
        except FlowPauseTimeout:
            _resume_after_timeout(flow_run_id)
            return ApprovalAnswer(
                Decision.DENY,
                reason=f"no answer within {request.timeout_s} s",
                answered_by="timeout",
                timed_out=True,
            )
        return ApprovalAnswer(
            Decision(answer.decision.value),
            reason=answer.reason or None,
            answered_by=answer.answered_by or "prefect-ui",
        )


def pause_key(request: ApprovalRequest) -> str:
    """Prefect input keys allow only lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{request.run_id}-{request.approval_id}".lower())


def _resume_after_timeout(flow_run_id: UUID) -> None:
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
    answered_by: str = "sdk",
    api_url: str | None = None,
    wait_s: float = RESUME_WAIT_S,
) -> None:
    """Answer a paused approval. Waits up to ``wait_s`` for the flow run to finish pausing."""
    run_input = {"decision": decision.value, "reason": reason or "", "answered_by": answered_by}
    deadline = time.monotonic() + wait_s
    with _api_url(api_url):
        while True:
            try:
                resume_flow_run(UUID(flow_run_id), run_input=run_input)
                return
            except ObjectNotFound as exc:
                raise RequestError(
                    f"no flow run {flow_run_id} on this Prefect server", field="run_id"
                ) from exc
            except Exception as exc:  # Prefect raises NotPausedError/RuntimeError while the pause settles
                if time.monotonic() >= deadline:
                    raise ApprovalAnswerError(flow_run_id, str(exc)) from exc
                time.sleep(0.2)


class ApprovalAnswerError(OrchestratorError):
    def __init__(self, flow_run_id: str, detail: str) -> None:
        self.flow_run_id = flow_run_id
        super().__init__(f"could not answer the approval of flow run {flow_run_id}: {detail}")
