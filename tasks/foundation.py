"""Foundation tasks: load the run's instruction hierarchy, fingerprint it, and compare it with the task's
previous run (drift); with ``on_instruction_drift: ask``, the approval the exec milestone waits for."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from codex_orchestrator import drift
from codex_orchestrator.approvals import Announce, ApprovalRequest, Approver
from codex_orchestrator.call_recorder import host_label
from codex_orchestrator.clock import utc_now
from codex_orchestrator.instructions import InstructionSettings, load_for_cwds
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.manifest import (
    ApprovalRecord,
    DriftRecord,
    InstructionRecord,
    InstructionSetRecord,
    RulesFileRecord,
    RunState,
)
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.request import RunRequest
from codex_orchestrator.rules.apply import load_records
from codex_orchestrator.rules.sources import RulesSettings
from codex_orchestrator.run import RunOwner

DRIFT_STEP = "instructions"


class LoadedInstructions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[InstructionRecord]
    sets: list[InstructionSetRecord]
    rules_files: list[RulesFileRecord] = []


@task(name="load-instructions", cache_policy=NO_CACHE, persist_result=False)
def load_instruction_files(
    run: RunRef, settings: InstructionSettings, cwds: list[str], rules: RulesSettings | None = None
) -> LoadedInstructions:
    """Every source of every step's set (once each, in reading order) and each set's combined hash; and the
    exec-policy rules files the run reads, fingerprinted alike."""
    sets = load_for_cwds(Path(run.workspace), cwds, settings)
    rules_files = load_records(Path(run.workspace), rules) if rules is not None else []
    sources: dict[str, InstructionRecord] = {}
    for found in sets:
        for f in found.sources:
            sources.setdefault(
                f.path,
                InstructionRecord(
                    path=f.path,
                    sha256=f.sha256,
                    bytes=f.size_bytes,
                    scope=f.scope,
                    included_bytes=f.included_bytes,
                ),
            )
    return LoadedInstructions(
        rules_files=rules_files,
        sources=list(sources.values()),
        sets=[
            InstructionSetRecord(
                cwd=s.cwd,
                sources=[f.path for f in s.sources],
                sha256=s.sha256,
                bytes=len(s.text.encode("utf-8")),
                truncated=s.truncated,
                warnings=list(s.warnings),
            )
            for s in sets
        ],
    )


def record_instructions(
    owner: RunOwner,
    request: RunRequest,
    loaded: LoadedInstructions,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> DriftRecord:
    """Write the sources, sets and drift into the run; log the drift (event, Prefect log) unless ignored."""
    state = owner.state()
    previous = drift.previous_sources(
        Path(owner.ref.runs_dir), owner.ref.task_id, owner.ref.run_id, state.created_at
    )
    record = drift.drift_record(
        previous, [*loaded.sources, *loaded.rules_files], request.on_instruction_drift
    )

    def change(run: RunState) -> None:
        run.instructions = loaded.sources
        run.rules_files = loaded.rules_files
        run.instruction_sets = loaded.sets
        run.drift = record

    owner.update(change)
    for found in loaded.sets:
        for warning in found.warnings:
            logger.warning("instructions (cwd %s): %s", found.cwd, warning)
    if record.status == "drifted" and record.policy != "ignore":
        by = {
            kind: [c.path for c in record.changes if c.change == kind]
            for kind in ("added", "removed", "changed")
        }
        owner.events.emit(
            ev.InstructionsDrift(
                previous_run_id=record.previous_run_id or "",
                added=by["added"],
                removed=by["removed"],
                changed=by["changed"],
                policy=record.policy,
            )
        )
        logger.warning("instruction drift: %s", drift.summary(record))
    return record


def confirm_drift(owner: RunOwner, request: RunRequest, approver: Approver) -> bool:
    """``on_instruction_drift: ask``: ask before the exec milestone (through the same pause machinery as a
    tool call's approval); True when exec may start."""
    record = owner.state().drift
    if (
        record is None
        or record.status != "drifted"
        or record.policy != "ask"
        or record.decision == "approved"
    ):
        return True
    asked = sum(1 for a in owner.store.approvals() if a.step == DRIFT_STEP)
    question = ApprovalRequest(
        approval_id=f"instructions-drift.ap{asked + 1}",
        run_id=owner.ref.run_id,
        task_id=owner.ref.task_id,
        tool_call_id="",
        step=DRIFT_STEP,
        tool="instructions",
        command="\n".join(f"{c.change}: {c.path}" for c in record.changes),
        cwd=".",
        needs=(),
        reason=f"the instruction files changed: {drift.summary(record)}",
        purpose="instructions",
        sandbox="none",
        timeout_s=request.approval_timeout_s,
    )
    approval = ApprovalRecord.for_request(question, requested_at=utc_now())
    announce = _announcer(owner, approval)
    answer = approver.ask(question, announce)
    if approval.flow_run_id is None and not _announced(owner, approval):
        announce(None)
    approval.outcome = "approved" if answer.approved else "denied"
    approval.source = "policy" if answer.source == "policy" else "human"
    approval.answered_by = answer.answered_by
    approval.answer_reason = owner.redact(answer.reason) if answer.reason else None
    approval.reviewer = owner.redact(answer.reviewer) if answer.reviewer else None
    approval.resolved_at = utc_now()
    owner.store.write_approval(approval)
    owner.events.emit(
        ev.ApprovalResolved(
            tool_call_id="",
            approval_id=approval.approval_id,
            outcome=approval.outcome,
            source=approval.source,
            answered_by=answer.answered_by,
            reason=approval.answer_reason,
            reviewer=approval.reviewer,
        )
    )

    def change(run: RunState) -> None:
        if run.drift is not None:
            run.drift.decision = "approved" if answer.approved else "denied"
            run.drift.approval_id = approval.approval_id

    owner.update(change)
    return answer.approved


def _announcer(owner: RunOwner, approval: ApprovalRecord) -> Announce:
    def announce(flow_run_id: str | None) -> None:
        approval.flow_run_id = flow_run_id
        approval.asked_by = host_label()
        owner.store.write_approval(approval)

        def change(run: RunState) -> None:
            if run.drift is not None:
                run.drift.approval_id = approval.approval_id

        owner.update(change)  # refolds: `approvals` and the UI show the question now
        owner.events.emit(
            ev.ApprovalRequested(
                tool_call_id="",
                approval_id=approval.approval_id,
                purpose="instructions",
                reason=approval.reason,
                needs=[],
                flow_run_id=flow_run_id,
            )
        )

    return announce


def _announced(owner: RunOwner, approval: ApprovalRecord) -> bool:
    return owner.store.read_approval(approval.approval_id) is not None
