"""The verification milestone's steps, run inside its flow (flows/milestones.py):

1. diagnostics — the workspace's change since the run began (the base commit foundation recorded), files
   touched by edit steps vs by commands, tool versions;
2. spec-guard — in-process, read-only git;
3. guardrails — the request's guardrails as gated tool calls (their own step graph), each with a result;
4. review — a reviewer command's verdict, or a person's in a paused flow run (tasks/review.py);

each recorded in the run's state (the manifest's sections) and as events, for the hand-off and the metrics.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from codex_orchestrator.clock import utc_now
from codex_orchestrator.graph import OnFailure
from codex_orchestrator.policy import ToolKind
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.atomic import write_atomic
from codex_orchestrator.records.manifest import RunState
from codex_orchestrator.records.store import RunStore
from codex_orchestrator.request import RunRequest, Step
from codex_orchestrator.run import RunOwner
from codex_orchestrator.toolcall import call_id_for
from codex_orchestrator.verification import diagnostics, guardrails, spec_guard
from codex_orchestrator.verification import git as vgit
from codex_orchestrator.verification import review as rv
from codex_orchestrator.verification.records import (
    DiagnosticsRecord,
    GuardrailRecord,
    ReviewRecord,
    SpecGuardRecord,
)
from flows.workflow import GatedRun, gated_run_from_request

MILESTONE = "verification"
REVIEW_FILENAME = "review.json"


def record_base_commit(owner: RunOwner) -> None:
    """Foundation: remember HEAD as the run's base, once (a resumed run keeps the first one)."""
    if owner.state().diagnostics is not None:
        return
    base = vgit.head_commit(Path(owner.ref.workspace))

    def change(state: RunState) -> None:
        if state.diagnostics is None:
            state.diagnostics = DiagnosticsRecord(base_commit=base)

    owner.update(change)


def _set(owner: RunOwner, **sections: object) -> None:
    def change(state: RunState) -> None:
        for name, value in sections.items():
            setattr(state, name, value)

    owner.update(change)


def run_diagnostics(owner: RunOwner, request: RunRequest) -> DiagnosticsRecord:
    workspace = Path(owner.ref.workspace)
    store = RunStore(owner.ref)
    edited = [
        s.path
        for s in request.steps
        if s.kind is ToolKind.EDIT and s.path and _succeeded(store, call_id_for("exec", s.name))
    ]
    probes = dict(request.verification.diagnostics.versions)
    if request.verification.diagnostics.agent_version:
        for step in request.steps:
            program = diagnostics.program_of(step.command) if step.kind is ToolKind.AGENT else None
            if step.kind is ToolKind.AGENT and step.agent == "codex":
                program = _codex_binary(step.codex_bin)
            if program:
                probes.setdefault(f"agent:{step.name}", [program, "--version"])
    state = owner.state()
    base = state.diagnostics.base_commit if state.diagnostics else None
    record = diagnostics.measure(workspace, base, edited=edited, probes=probes, now=utc_now())
    record = DiagnosticsRecord.model_validate(owner.redact.tree(record.model_dump(mode="json")))
    _set(owner, diagnostics=record)
    owner.events.emit(
        ev.DiagnosticsRecorded(
            files_changed=record.files_changed, insertions=record.insertions, deletions=record.deletions
        )
    )
    return record


def _succeeded(store: RunStore, call_id: str) -> bool:
    call = store.read_call(call_id)
    return call is not None and call.status == "succeeded"


def run_spec_guard(owner: RunOwner, request: RunRequest, *, exec_succeeded: bool) -> SpecGuardRecord | None:
    settings = request.verification.spec_guard
    if not settings.enabled:
        return None
    if not exec_succeeded:
        record = SpecGuardRecord(status="skipped", required=settings.required, detail="exec did not succeed")
    else:
        state = owner.state()
        base = state.diagnostics.base_commit if state.diagnostics else None
        today = datetime.now(UTC).date()
        record = spec_guard.check_in_run(Path(owner.ref.workspace), base, settings, today=today)
    _set(owner, spec_guard=record)
    return record


def run_guardrails(
    owner: RunOwner, request: RunRequest, run: GatedRun, *, exec_succeeded: bool, spec: SpecGuardRecord | None
) -> list[GuardrailRecord]:
    if exec_succeeded:
        run.run_steps(
            request.guardrails,
            max_parallel=request.max_parallel,
            on_failure=OnFailure.CONTINUE,  # every guardrail reports, whatever another found
            milestone=MILESTONE,
        )
        store = RunStore(owner.ref)
        ids = {g.name: call_id_for(MILESTONE, g.name) for g in request.guardrails}
        results = guardrails.results(request.guardrails, {i: store.read_call(i) for i in ids.values()}, ids)
    else:
        results = guardrails.all_skipped(request.guardrails, "exec did not succeed")
    if spec is not None:
        results = [guardrails.spec_guard_result(spec), *results]
    _set(owner, guardrails=results)
    for result in results:
        owner.events.emit(
            ev.GuardrailResult(
                name=result.name, result=result.result, required=result.required, call_id=result.call_id
            )
        )
    return results


def _review_call(run: GatedRun, name: str, command: str | list[str], env: dict[str, str]) -> str:
    """Run a review command (or the reviewer) as a gated tool call; returns its call id."""
    step = Step(name=name, kind=ToolKind.AGENT, command=command, env=env)
    run.run_steps([step], max_parallel=1, on_failure=OnFailure.CONTINUE, milestone=MILESTONE)
    return call_id_for(MILESTONE, name)


def run_review(
    owner: RunOwner,
    request: RunRequest,
    run: GatedRun,
    *,
    exec_succeeded: bool,
    results: list[GuardrailRecord],
) -> ReviewRecord:
    settings = request.verification.review
    record = ReviewRecord(policy=settings.policy, requested_at=utc_now())
    failing = guardrails.failing_required(results)
    if settings.policy == "off":
        record = _answered(record, "skipped", "policy", comments="no review asked (review.policy: off)")
    elif not exec_succeeded or failing:
        why = (
            "exec did not succeed"
            if not exec_succeeded
            else "required guardrail(s) did not pass: " + ", ".join(failing)
        )
        record = _answered(record, "skipped", "policy", comments=f"not reviewed: {why}")
    else:
        record = _review(owner, request, run, record, results)
    _set(owner, review=record)
    assert record.verdict is not None and record.source is not None
    owner.events.emit(
        ev.ReviewVerdict(verdict=record.verdict, source=record.source, by=record.by, comments=record.comments)
    )
    return record


def _answered(record: ReviewRecord, verdict: str, source: str, **fields: object) -> ReviewRecord:
    return record.model_copy(
        update={
            "status": "answered",
            "verdict": verdict,
            "source": source,
            "answered_at": utc_now(),
            "answered_by": fields.pop("answered_by", source),
            **fields,
        }
    )


def _review(
    owner: RunOwner, request: RunRequest, run: GatedRun, record: ReviewRecord, results: list[GuardrailRecord]
) -> ReviewRecord:
    settings = request.verification.review
    store = RunStore(owner.ref)
    state = owner.state()
    output: str | None = None
    if settings.command:
        call_id = _review_call(run, "review-command", settings.command, {})
        call = store.read_call(call_id)
        output = (call.output_tail if call is not None else "") or None
        if call is not None and call.status != "succeeded":
            output = f"(the review command did not succeed: {call.status}, {call.error or 'no detail'})\n" + (
                output or ""
            )
        record = record.model_copy(update={"command_call_id": call_id, "command_output": output})
        _set(owner, review=record)
    pkg = rv.package(
        run_id=owner.run_id,
        task_id=owner.ref.task_id,
        goal=state.goal,
        policy=settings.policy,
        diagnostics=state.diagnostics,
        guardrails=results,
        spec_guard=state.spec_guard,
        command_output=output,
    )
    note: str | None = None
    if settings.reviewer:
        review_file = owner.paths.run_dir / REVIEW_FILENAME
        write_atomic(review_file, pkg.model_dump_json(indent=2).encode("utf-8"))
        call_id = _review_call(
            run, "reviewer", settings.reviewer, {rv.REVIEW_FILE_ENV: str(review_file.resolve())}
        )
        record = record.model_copy(update={"reviewer_call_id": call_id})
        call = store.read_call(call_id)
        try:
            if call is None or call.status != "succeeded":
                raise rv.ReviewVerdictError(
                    f"the reviewer command did not succeed ({call.status if call else 'not run'})"
                )
            verdict, comments = rv.parse_reviewer_output(call.output_tail, settings.policy)
        except rv.ReviewVerdictError as exc:
            note = f"The reviewer command gave no verdict ({exc}); a person decides."
        else:
            # The reviewer is named by its command, as its tool call records it (redacted).
            return _answered(
                record, verdict, "reviewer", by=call.command, answered_by="reviewer", comments=comments
            )
    return _ask_person(owner, request, record, rv.markdown(pkg, note))


def _ask_person(owner: RunOwner, request: RunRequest, record: ReviewRecord, description: str) -> ReviewRecord:
    from tasks.review import ReviewWait, ask_review

    settings = request.verification.review

    def announce(flow_run_id: str) -> None:
        _set(owner, review=record.model_copy(update={"flow_run_id": flow_run_id, "status": "pending"}))
        owner.events.emit(ev.ReviewRequested(flow_run_id=flow_run_id, policy=settings.policy))

    params = ReviewWait(
        run_id=owner.run_id,
        task_id=owner.ref.task_id,
        description=owner.redact(description),
        policy=settings.policy,
        timeout_s=settings.timeout_s or request.approval_timeout_s,
    )
    answer = ask_review(params, announce)
    flow_run_id = (owner.state().review or record).flow_run_id
    channel = str(answer.get("answered_by") or "prefect-ui")
    source = "policy" if answer.get("timed_out") else "human"
    reviewer = answer.get("reviewer")
    comments = answer.get("comments")
    return _answered(
        record.model_copy(update={"flow_run_id": flow_run_id}),
        str(answer["verdict"]),
        source,
        by=owner.redact(str(reviewer)) if reviewer else channel,
        answered_by=channel,
        comments=owner.redact(str(comments)) if comments else None,
    )


def verify(owner: RunOwner, request: RunRequest, *, exec_succeeded: bool) -> tuple[bool, str]:
    """The milestone's steps in order; returns (ok, a one-line message for the flow's state)."""
    run_diagnostics(owner, request)
    spec = run_spec_guard(owner, request, exec_succeeded=exec_succeeded)
    run = gated_run_from_request(owner.ref, request, MILESTONE)
    results = run_guardrails(owner, request, run, exec_succeeded=exec_succeeded, spec=spec)
    record = run_review(owner, request, run, exec_succeeded=exec_succeeded, results=results)
    # No `finally: close()`: after an interrupt, a call paused for approval would be waited for forever.
    run.close()
    failing = guardrails.failing_required(results)
    if failing:
        return False, "required guardrail(s) did not pass: " + ", ".join(failing)
    if record.verdict == "changes-requested":
        return False, "changes requested" + (f": {record.comments}" if record.comments else "")
    if record.policy == "required" and record.verdict != "approved":
        return False, f"the review was not approved ({record.verdict}: {record.comments or 'no comments'})"
    return True, "guardrails passed" + (f", review {record.verdict}" if record.policy != "off" else "")


def _codex_binary(named: str | None) -> str | None:
    """The codex an agent step runs, as the driver resolves it (its version goes into diagnostics), if found."""
    from codex_orchestrator.agents.app_server import resolve_binary
    from codex_orchestrator.agents.errors import AgentUnavailable

    try:
        return str(resolve_binary(named))
    except AgentUnavailable:
        return None
