"""The review pause: the change shown in a Prefect Resume form, answered there, with ``approve`` at the CLI, at
the terminal or from Python — the same pause machinery as tool-call approvals (tasks/approval.py).

Who answered is established by the channel, as for approvals: our own answerers name it beside the answer;
an answer without it came from the UI form. A *skip* where the policy does not allow one is asked again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum

from prefect import flow, get_run_logger, tags
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput, keyset_from_paused_state
from prefect.settings import PREFECT_UI_URL
from prefect.states import Paused
from pydantic import BaseModel, ConfigDict, Field

from codex_orchestrator.approvals import ANSWER_CHANNELS, flow_run_url
from codex_orchestrator.errors import RequestError
from codex_orchestrator.verification.review import VERDICT_WORDS, skip_allowed
from codex_orchestrator.verification.settings import ReviewPolicy
from tasks.approval import (
    PAUSE_POLL_INTERVAL_S,
    RESUME_WAIT_S,
    resume_after_timeout,
    resume_with_input,
    run_tags,
    take_answer,
)

REVIEW_TAG = "codex-review"


class ReviewChoice(StrEnum):
    approve = "approve"
    request_changes = "request-changes"
    skip = "skip"


_CHOICE_OF = {
    "approved": ReviewChoice.approve,
    "changes-requested": ReviewChoice.request_changes,
    "skipped": ReviewChoice.skip,
}


class ReviewInput(RunInput):
    """The review's Resume form in the Prefect UI."""

    verdict: ReviewChoice = Field(
        default=ReviewChoice.request_changes,
        description="approve, request-changes (say what in the comments) or skip (where the policy allows)",
    )
    comments: str = Field(default="", description="what to change, or notes (recorded, secrets redacted)")
    reviewer: str = Field(default="", description="optional: your name, recorded with the verdict")


class ReviewWait(BaseModel):
    """The review flow run's parameters: what the UI shows. Already redacted; no secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    task_id: str
    description: str = Field(description="the change, as Markdown")
    policy: ReviewPolicy
    timeout_s: int


# Told the review's flow run id before it pauses (same process, same thread), so the run records where to
# answer; flow parameters are data, so the hook travels beside them (as for approvals).
_ANNOUNCE: ContextVar[Callable[[str], None] | None] = ContextVar("codex_review_announce", default=None)


@contextmanager
def announcing(hook: Callable[[str], None]) -> Iterator[None]:
    token = _ANNOUNCE.set(hook)
    try:
        yield
    finally:
        _ANNOUNCE.reset(token)


def ask_review(params: ReviewWait, announce: Callable[[str], None]) -> dict[str, object]:
    """Pause for the review in a flow run of its own (``review-<run id>``); returns the answer."""
    with announcing(announce), tags(*run_tags(params.run_id), REVIEW_TAG):
        return review(params)


def _pause_key(run_id: str, round_: int) -> str:
    return "".join(c if c.isalnum() or c == "-" else "-" for c in f"review-{run_id}-{round_}".lower())


@flow(name="review", flow_run_name="review-{params.run_id}", persist_result=False)
def review(params: ReviewWait) -> dict[str, object]:
    """Pauses until a verdict comes (or the timeout): approve, request-changes, or skip where allowed."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:  # pragma: no cover - a flow always has its context
        return {"verdict": "skipped", "answered_by": "none", "comments": "not inside a flow run"}
    flow_run_id = context.flow_run.id
    announce = _ANNOUNCE.get()
    if announce is not None:
        announce(str(flow_run_id))
    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    url = flow_run_url(api_url, str(flow_run_id), PREFECT_UI_URL.value())
    get_run_logger().info(
        "review of run %s waits: codex-orchestrator approve %s [--request-changes --comment TEXT]%s%s",
        params.run_id,
        params.run_id,
        " [--skip]" if skip_allowed(params.policy) else "",
        f" · or in the Prefect UI: {url}" if url else "",
    )
    deadline = time.monotonic() + params.timeout_s
    description = params.description
    round_ = 0
    while True:
        round_ += 1
        key = _pause_key(params.run_id, round_)
        form = ReviewInput.with_initial_data(description=description, verdict=ReviewChoice.request_changes)
        try:
            answer = pause_flow_run(
                wait_for_input=form,
                timeout=max(1, int(deadline - time.monotonic())),
                poll_interval=PAUSE_POLL_INTERVAL_S,
                key=key,
            )
        except FlowPauseTimeout:
            resume_after_timeout(flow_run_id)
            return {
                "verdict": "skipped",
                "answered_by": "timeout",
                "comments": f"no answer within {params.timeout_s} s",
                "timed_out": True,
            }
        channel = take_answer(flow_run_id, keyset_from_paused_state(Paused(pause_key=key)))
        if answer.verdict is ReviewChoice.skip and not skip_allowed(params.policy):
            get_run_logger().warning("skip is not allowed by review policy %r: asking again", params.policy)
            description = (
                "> **Skipping is not allowed** by this run's review policy (`required`): approve or "
                "request changes.\n\n" + params.description
            )
            continue
        return {
            "verdict": VERDICT_WORDS[answer.verdict.value],
            "comments": answer.comments or None,
            "reviewer": answer.reviewer or None,
            "answered_by": channel,
        }


def answer_review(
    flow_run_id: str,
    verdict: str,
    *,
    comments: str | None = None,
    reviewer: str | None = None,
    answered_by: str = "sdk",
    api_url: str | None = None,
    wait_s: float = RESUME_WAIT_S,
    redact: Callable[[str], str] = lambda text: text,
) -> None:
    """Answer a paused review (``approve``, ``request-changes``, ``skip``) through ``answered_by``."""
    if answered_by not in ANSWER_CHANNELS:
        raise RequestError(
            f"unknown channel {answered_by!r}", field="answered_by", allowed=", ".join(ANSWER_CHANNELS)
        )
    known = VERDICT_WORDS.get(verdict)
    if known is None:
        raise RequestError(
            f"unknown verdict {verdict!r}", field="verdict", allowed="approve, request-changes, skip"
        )
    choice = _CHOICE_OF[known].value
    run_input = {"verdict": choice, "comments": redact(comments or ""), "reviewer": redact(reviewer or "")}
    resume_with_input(flow_run_id, run_input, answered_by=answered_by, api_url=api_url, wait_s=wait_s)
