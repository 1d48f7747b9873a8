"""ToolOrchestrator: the one gate every tool call passes — approval → sandbox → attempt → retry.

1. approval: ``policy.decide`` says skip / forbid / ask; asks consult the session cache, then the ``Approver``.
2. sandbox: pick bubblewrap (local) or the host's sandbox command (SSH); if unavailable, the policy decides.
3. attempt: run in a PTY session (exec/), streaming output into the event log.
4. retry: retryable failures back off with jitter; a sandbox denial asks afresh to retry unsandboxed.
Every decision is recorded (run.py) and traced (telemetry.py) with a closed vocabulary.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from codex_orchestrator import read_sandbox
from codex_orchestrator.approvals import ApprovalAnswer, ApprovalRequest, Approver, Decision, cache_key
from codex_orchestrator.attempts import AttemptResult, run_edit, run_fetch
from codex_orchestrator.call_recorder import CallRecorder
from codex_orchestrator.clock import utc_now
from codex_orchestrator.exec.backend import DEFAULT_KILL_GRACE_S, ExecBackend
from codex_orchestrator.exec.errors import ExecError
from codex_orchestrator.exec.local import LocalPtyBackend
from codex_orchestrator.exec.session import ExecSession, ExecSessionManager
from codex_orchestrator.policy import (
    ApprovalPolicy,
    ApprovalSource,
    CallFacts,
    Capability,
    Outcome,
    Requirement,
    ToolKind,
    decide_escalation,
)
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.manifest import ApprovalRecord, AttemptRecord, CallRun, ToolCallRecord
from codex_orchestrator.retry import delay_for, retry_reason
from codex_orchestrator.rules.apply import RulesError, amendment_for, remember, rule_record, verdict_for
from codex_orchestrator.rules.sources import RulesSettings
from codex_orchestrator.rules.verdict import NO_VERDICT, RuleVerdict, decide_with_rules
from codex_orchestrator.sandbox import (
    SandboxMode,
    SandboxSpec,
    SandboxState,
    classify_denial,
    host_tmp_entries,
    probe,
)
from codex_orchestrator.shell_attempt import SandboxChoice, run_shell
from codex_orchestrator.telemetry.vocabulary import (
    answered_by_of,
    approval_source_of,
    decision_of,
    outcome_of,
    purpose_of,
    sandbox_state_of,
)
from codex_orchestrator.toolcall import ToolCallSpec


@dataclass(frozen=True)
class GateConfig:
    policy: ApprovalPolicy = ApprovalPolicy.ON_REQUEST
    profile: frozenset[Capability] = frozenset({Capability.READ})
    sandbox: SandboxMode = SandboxMode.WORKSPACE_WRITE
    enabled: bool = True  # the rollout feature flag: off runs calls directly, recorded as not-required
    approval_timeout_s: int = 3600
    kill_grace_s: float = DEFAULT_KILL_GRACE_S
    bwrap_path: str = "bwrap"
    rules: RulesSettings | None = None  # exec-policy rules (rules/); None: none are read


def initial_requirement(
    config: GateConfig, spec: ToolCallSpec, backend: ExecBackend, workspace: Path | None = None
) -> tuple[CallFacts, Requirement]:
    facts, requirement, _ = initial_decision(config, spec, backend, workspace)
    return facts, requirement


def initial_decision(
    config: GateConfig, spec: ToolCallSpec, backend: ExecBackend, workspace: Path | None = None
) -> tuple[CallFacts, Requirement, RuleVerdict]:
    """Step 1's decision for ``spec`` before anything is asked or run; ``exec`` also uses it to know up front
    whether a Prefect pause may be needed."""
    # Only on-failure looks at `confined`: the others decide without probing bwrap (start-up of `exec`).
    confined = (
        config.policy is ApprovalPolicy.ON_FAILURE
        and config.enabled
        and spec.kind in (ToolKind.SHELL, ToolKind.AGENT)
        and isinstance(backend, LocalPtyBackend)
        and config.sandbox is not SandboxMode.NONE
        and probe(config.bwrap_path).available
    )
    facts = replace(spec.facts(), confined=confined)  # on-failure lets confined calls go beyond the profile
    if not config.enabled:
        return facts, Requirement(Outcome.SKIP, "gate disabled by feature flag"), NO_VERDICT
    try:
        verdict = verdict_for(config.rules, workspace, facts, spec.cwd)
    except RulesError as exc:  # a rules file broke during the run: refuse rather than guess
        return facts, Requirement(Outcome.FORBID, f"the rules do not load: {exc}"), NO_VERDICT
    if facts.read_sandbox:
        # Read-only only in the read sandbox: there if it helps and it exists, else `run` (unless a rule decides).
        if verdict.decision is None:
            facts, requirement = read_sandbox.requirement(
                config.policy, config.profile, facts, backend, config.bwrap_path
            )
            return facts, requirement, verdict
        facts = read_sandbox.unconfined(facts)  # a rule decides: the call as it is outside the read sandbox
    return facts, decide_with_rules(config.policy, config.profile, facts, verdict), verdict


@dataclass
class ToolOrchestrator:
    """Runs one run's tool calls through the gate, in this process. Not thread-safe: one call at a time.

    Named shells (``session:``) live in ``sessions`` across the calls this instance runs."""

    recorder: CallRecorder
    config: GateConfig
    approver: Approver
    backend: ExecBackend = field(default_factory=LocalPtyBackend)
    sessions: ExecSessionManager = field(default_factory=ExecSessionManager)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    sandbox_prefix: tuple[str, ...] = ()  # for SSH backends: the host's sandbox command, if any
    on_session: Callable[[ExecSession], None] | None = None  # e.g. the CLI attaching its stdin to the session
    # Held around steps 3 and 4 (e.g. a slot of the instance's Prefect global concurrency limit).
    attempt_slot: Callable[[], AbstractContextManager[object]] = nullcontext
    # Named shell sessions that live across tool calls (a step's `session:`), by name and sandbox.
    named_shells: dict[tuple[str, SandboxSpec | None, tuple[str, ...]], ExecSession] = field(
        default_factory=dict, init=False, repr=False
    )

    def run(
        self,
        spec: ToolCallSpec,
        prior: ToolCallRecord | None = None,
        *,
        prefect_task_run_id: str | None = None,
    ) -> ToolCallRecord:
        """Run ``spec`` through the four steps; ``prior`` is this call's record from before a resume."""
        rec = self.recorder
        facts, requirement, verdict = initial_decision(self.config, spec, self.backend, rec.workspace)
        call = ToolCallRecord(
            id=spec.id,
            step=spec.step,
            milestone=spec.milestone,
            kind=spec.kind.value,
            command=rec.redact(spec.display),
            # On a remote backend the command runs in the remote directory, not in a local one.
            cwd=spec.backend_cwd if spec.backend_cwd is not None else rec.rel(spec.cwd),
            backend=self.backend.name if spec.kind in (ToolKind.SHELL, ToolKind.AGENT) else "orchestrator",
            needs=sorted(c.value for c in facts.needs),
            status="pending",
            started_at=utc_now(),
            depends_on=list(spec.depends_on),
            prefect_task_run_id=prefect_task_run_id or spec.prefect_task_run_id,
        )
        if prior is not None:  # a resumed run reruns this call: keep its place and what happened before
            call.order = prior.order
            call.lineage = [
                *prior.lineage,
                CallRun(
                    status=prior.status,
                    started_at=prior.started_at,
                    attempts=len(prior.attempts),
                    error=prior.error,
                    instance=prior.instance,
                    host=prior.host,
                ),
            ]
        rec.announce(call)
        started = time.monotonic()
        with rec.tracer.span(
            "tool_call",
            **{"codex.tool_call.id": call.id, "codex.step": spec.step, "codex.tool": spec.kind.value},
        ) as span:
            # 1. approval
            call.approval_outcome = requirement.outcome.value
            call.approval_reason = rec.redact(requirement.reason)
            call.rule = rule_record(verdict)
            amendment = amendment_for(facts)
            try:
                granted = self.approve(spec, call, requirement, facts.needs, amendment)
                rec.tracer.set(span, **{"codex.approval.source": call.approval_source})
                if granted:
                    # 2. sandbox
                    sandbox = self._select_sandbox(spec, call, granted, facts)
                    if sandbox is not None:
                        # 3 + 4. attempts, retries and escalation; the instance's slot is held from here
                        # only, so a call waiting for a person does not hold it
                        with self.attempt_slot():
                            self._attempts(spec, call, sandbox)
            except BaseException as exc:
                # Record what happened before letting it go: the manifest must never show a call stuck mid-way.
                call.status = "failed"
                call.error = rec.redact(f"{type(exc).__name__}: {exc}")
                self._close(call, started, span)
                raise
            self._close(call, started, span)
        return call

    def _close(self, call: ToolCallRecord, started: float, span: Any) -> None:
        rec = self.recorder
        call.duration_ms = round((time.monotonic() - started) * 1000, 3)
        call.finished_at = utc_now()
        rec.tracer.set(
            span,
            **{
                "codex.outcome": outcome_of(call.status, call.sandbox.state),
                "codex.sandbox.state": sandbox_state_of(call.sandbox.state),
                "process.exit_code": call.exit_code,
            },
        )
        if call.status != "succeeded":
            rec.tracer.fail(span, call.error or call.status)
        rec.tracer.record_call(call)
        rec.events.emit(
            ev.ToolCallFinished(
                tool_call_id=call.id,
                status=call.status,
                exit_code=call.exit_code,
                attempts=len(call.attempts),
                approval_source=call.approval_source or "not-required",
                sandbox_state=call.sandbox.state,
                duration_ms=call.duration_ms or 0.0,
            )
        )
        rec.finish_call(call)

    # -- 1. approval ----------------------------------------------------------------------------------------
    def approve(
        self,
        spec: ToolCallSpec,
        call: ToolCallRecord,
        requirement: Requirement,
        needs: frozenset[Capability],
        amendment: tuple[tuple[str, ...], ...] = (),
    ) -> frozenset[Capability] | None:
        """Step 1: the capabilities granted for this call, or None when it must not run (``call`` then says
        why). Also for a call that runs elsewhere (an agent's own tool call, run by the agent). ``amendment``:
        the rule approve-and-remember writes."""
        rec = self.recorder
        if requirement.outcome is Outcome.SKIP:
            # `missing` is non-empty only for on-failure's confined calls: those run without it, sandboxed.
            granted = self.config.profile | (needs - requirement.missing)
            return self._settle(call, ApprovalSource.NOT_REQUIRED, granted)
        if requirement.outcome is Outcome.FORBID:
            self._forbid(call, requirement.reason)
            return None
        key = cache_key(spec.kind.value, call.command, call.cwd, needs).digest()
        if rec.cache_check(call, key):
            return self._settle(call, ApprovalSource.CACHE, self.config.profile | needs)
        answer = self._ask(
            spec, call, "capability", requirement.reason, requirement.missing or needs, amendment
        )
        call.approval_source = answer.source
        if not answer.approved:
            self._refuse(call, f"denied: {answer.reason or 'no reason given'}")
            return None
        if answer.decision is Decision.APPROVE_FOR_SESSION:
            rec.cache_remember(key)
        return self.config.profile | needs

    def _settle(
        self, call: ToolCallRecord, source: ApprovalSource, granted: frozenset[Capability]
    ) -> frozenset[Capability]:
        """Settled without asking (not required, or a session-cache hit): one approval.resolved event."""
        call.approval_source = source.value
        outcome = "not-required" if source is ApprovalSource.NOT_REQUIRED else "approved"
        self.recorder.events.emit(
            ev.ApprovalResolved(tool_call_id=call.id, outcome=outcome, source=source.value)
        )
        return granted

    def _forbid(self, call: ToolCallRecord, reason: str) -> None:
        """Refused by the policy without asking: one approval.resolved event."""
        call.approval_source = ApprovalSource.POLICY.value
        self._refuse(call, f"forbidden: {reason}")
        self.recorder.events.emit(
            ev.ApprovalResolved(tool_call_id=call.id, outcome="forbidden", source="policy", reason=reason)
        )

    @staticmethod
    def _refuse(call: ToolCallRecord, error: str) -> None:
        call.status = "denied"
        call.error = error

    def _ask(
        self,
        spec: ToolCallSpec,
        call: ToolCallRecord,
        purpose: str,
        reason: str,
        needs: frozenset[Capability],
        amendment: tuple[tuple[str, ...], ...] = (),
    ) -> ApprovalAnswer:
        rec = self.recorder
        approval_id = rec.new_approval_id(call)
        call.approval_ids.append(approval_id)
        call.status = "awaiting-approval"
        request = ApprovalRequest(
            approval_id=approval_id,
            run_id=rec.run_id,
            task_id=rec.task_id,
            tool_call_id=call.id,
            step=spec.step,
            tool=spec.kind.value,
            command=call.command,
            cwd=call.cwd,
            needs=tuple(sorted(c.value for c in needs)),
            reason=reason,
            purpose=purpose,
            sandbox=self.config.sandbox.value,
            timeout_s=self.config.approval_timeout_s,
            amendment=tuple(tuple(rec.redact(t) for t in p) for p in amendment),
        )
        record = ApprovalRecord.for_request(request, requested_at=utc_now())
        record.rule = call.rule if purpose == "capability" else None
        announced = False

        def announce(flow_run_id: str | None) -> None:
            nonlocal announced
            announced = True
            record.flow_run_id = flow_run_id
            rec.approval_pending(call, record, request)
            rec.events.emit(
                ev.ApprovalRequested(
                    tool_call_id=call.id,
                    approval_id=approval_id,
                    purpose=purpose,
                    reason=reason,
                    needs=list(request.needs),
                    flow_run_id=flow_run_id,
                )
            )

        with rec.tracer.span(
            "approval", **{"codex.approval.id": approval_id, "codex.approval.purpose": purpose}
        ) as span:
            asked = time.monotonic()
            answer = self.approver.ask(request, announce)
            rec.tracer.set(
                span,
                **{
                    "codex.approval.decision": decision_of(answer.decision.value),
                    "codex.approval.answered_by": answered_by_of(answer.answered_by),
                    "codex.approval.source": approval_source_of(answer.source),
                },
            )
            rec.tracer.record_approval_wait(
                (time.monotonic() - asked) * 1000,
                purpose=purpose_of(purpose),
                decision=decision_of(answer.decision.value),
            )
        record.outcome = "approved" if answer.approved else "denied"
        record.for_session = answer.decision is Decision.APPROVE_FOR_SESSION
        record.source = "policy" if answer.source == "policy" else "human"
        record.answered_by = answer.answered_by
        record.answer_reason = rec.redact(answer.reason) if answer.reason else None
        record.reviewer = rec.redact(answer.reviewer) if answer.reviewer else None
        if answer.decision is Decision.APPROVE_AND_REMEMBER and amendment:
            # The rule is written before the answer is recorded: a record never names a rule that is not there.
            written_to, lines = remember(rec.workspace, self.config.rules, amendment)
            record.remembered_to, record.remembered = written_to, [rec.redact(line) for line in lines]
        if not announced:
            announce(None)  # the approver answered without announcing (e.g. nobody to ask)
        rec.approval_resolved(record)
        rec.events.emit(
            ev.ApprovalResolved(
                tool_call_id=call.id,
                approval_id=approval_id,
                outcome="approved" if answer.approved else "denied",
                source=record.source,
                for_session=record.for_session,
                answered_by=answer.answered_by,
                reason=record.answer_reason,
                reviewer=record.reviewer,
            )
        )
        call.status = "pending"
        return answer

    # -- 2. sandbox -----------------------------------------------------------------------------------------
    def _select_sandbox(
        self, spec: ToolCallSpec, call: ToolCallRecord, granted: frozenset[Capability], facts: CallFacts
    ) -> SandboxChoice | None:
        if spec.kind not in (ToolKind.SHELL, ToolKind.AGENT) or not self.config.enabled:
            return self._record_sandbox(call, SandboxChoice(SandboxState.NONE))
        if facts.read_sandbox and call.approval_source == ApprovalSource.NOT_REQUIRED.value:
            # It runs unasked only because it is read-only there (step 1 checked that the sandbox exists).
            return self._record_sandbox(
                call, read_sandbox.choice(self.recorder.workspace, self.config.bwrap_path)
            )
        if not isinstance(self.backend, LocalPtyBackend):
            if self.sandbox_prefix:
                return self._record_sandbox(
                    call, SandboxChoice(SandboxState.SANDBOXED, prefix=self.sandbox_prefix)
                )
            return self._record_sandbox(
                call, SandboxChoice(SandboxState.NONE, detail="remote host names no sandbox")
            )
        if self.config.sandbox is SandboxMode.NONE:
            return self._record_sandbox(call, SandboxChoice(SandboxState.NONE))
        # A call without `edit` gets a read-only sandbox even where the run's mode is workspace-write.
        mode = self.config.sandbox if Capability.EDIT in granted else SandboxMode.READ_ONLY
        sandbox_spec = SandboxSpec(
            mode=mode,
            workspace=self.recorder.workspace,
            network=Capability.NETWORK in granted,
            bwrap_path=self.config.bwrap_path,
            readable_paths=host_tmp_entries(),
        )
        found = probe(sandbox_spec.bwrap_path)
        if found.available:
            return self._record_sandbox(call, SandboxChoice(SandboxState.SANDBOXED, spec=sandbox_spec))
        call.sandbox.detail = found.detail
        requirement = decide_escalation(self.config.policy)
        reason = f"sandbox unavailable ({found.detail}); run without it?"
        if requirement.outcome is Outcome.FORBID:
            call.sandbox.state = SandboxState.DENIED.value
            self._forbid(call, f"sandbox unavailable and policy is never: {found.detail}")
            return None
        answer = self._ask(spec, call, "escalation", reason, frozenset())
        if not answer.approved:
            call.sandbox.state = SandboxState.DENIED.value
            call.approval_source = answer.source
            self._refuse(call, f"denied: {answer.reason or 'running unsandboxed was refused'}")
            return None
        return self._record_sandbox(call, SandboxChoice(SandboxState.UNAVAILABLE, detail=found.detail))

    def _record_sandbox(self, call: ToolCallRecord, sandbox: SandboxChoice) -> SandboxChoice:
        call.sandbox.mode = (
            sandbox.spec.mode.value if sandbox.spec else ("host" if sandbox.prefix else "none")
        )
        call.sandbox.state = sandbox.state.value
        if sandbox.detail:
            call.sandbox.detail = sandbox.detail
        return sandbox

    # -- 3 + 4. attempts ------------------------------------------------------------------------------------
    def _attempts(self, spec: ToolCallSpec, call: ToolCallRecord, sandbox: SandboxChoice) -> None:
        rec = self.recorder
        attempt_no = 0
        failures = 0  # attempts that count against the retry budget (an escalation's rerun does not)
        while True:
            attempt_no += 1
            sandboxed = sandbox.spec is not None or bool(sandbox.prefix)
            call.status = "running"
            rec.events.emit(ev.AttemptStarted(tool_call_id=call.id, attempt=attempt_no, sandboxed=sandboxed))
            rec.touch(call)
            started_at = utc_now()
            attrs: dict[str, str | int | bool] = {
                "codex.tool_call.id": call.id,
                "codex.attempt": attempt_no,
                "codex.sandboxed": sandboxed,
            }
            try:
                with rec.tracer.span("attempt", **attrs):
                    result = self._attempt(spec, call, sandbox)
            except BaseException as exc:  # interrupted (Ctrl-C, SIGTERM): the attempt still happened
                call.attempts.append(
                    AttemptRecord(
                        attempt=attempt_no,
                        started_at=started_at,
                        duration_ms=0.0,
                        sandboxed=sandboxed,
                        error=f"interrupted: {type(exc).__name__}",
                    )
                )
                raise
            attempt = AttemptRecord(
                attempt=attempt_no,
                started_at=started_at,
                duration_ms=result.duration_ms,
                exit_code=result.exit_code,
                sandboxed=sandboxed,
                error=rec.redact(str(result.error))
                if result.error
                else ("timed out" if result.timed_out else None),
            )
            call.attempts.append(attempt)
            call.exit_code = result.exit_code
            call.output_tail = rec.redact.tail(result.output)  # the tail's cut may fall inside a secret
            call.output_bytes += result.output_bytes
            call.omitted_bytes += result.omitted_bytes
            call.session_id = result.session_id
            call.final_url = rec.redact(result.final_url) if result.final_url else call.final_url
            if result.guard is not None:
                call.guard.switched = True
            call.guard.mode = result.mode  # type: ignore[assignment]
            rec.events.emit(
                ev.AttemptFinished(
                    tool_call_id=call.id,
                    attempt=attempt_no,
                    exit_code=result.exit_code,
                    duration_ms=result.duration_ms,
                    error=attempt.error,
                    session_id=result.session_id,
                )
            )
            if result.ok:
                call.status = "succeeded"
                call.error = None
                return
            # A failure the sandbox caused: ask afresh (never from the cache) to retry without it.
            denial = (
                classify_denial(result.exit_code, result.output, sandbox.spec)
                if sandbox.spec is not None and not result.timed_out and result.error is None
                else None
            )
            if denial is not None:
                call.sandbox.denial = denial.kind
                call.sandbox.evidence = rec.redact(denial.evidence)
                rec.events.emit(
                    ev.SandboxDenied(tool_call_id=call.id, denial=denial.kind, evidence=call.sandbox.evidence)
                )
                if self._escalate(spec, call, denial.kind):
                    sandbox = SandboxChoice(SandboxState.ESCALATED)
                    call.sandbox.state = SandboxState.ESCALATED.value
                    continue
                call.sandbox.state = SandboxState.DENIED.value
                call.status = "failed"
                call.error = f"the sandbox blocked a {denial.kind} and running without it was not approved"
                return
            failures += 1
            reason = retry_reason(
                spec.retry, exit_code=result.exit_code, timed_out=result.timed_out, error=result.error
            )
            if reason is None or failures >= spec.retry.max_attempts:
                call.status = "timed-out" if result.timed_out else "failed"
                call.error = attempt.error or f"exit code {result.exit_code}"
                call.failure = result.error.failure if isinstance(result.error, ExecError) else None
                if reason is not None and failures > 1:
                    call.error += f" (gave up after {failures} attempts)"
                return
            delay = delay_for(spec.retry, failures, self.rng)
            attempt.retry_delay_s = round(delay, 4)
            rec.events.emit(
                ev.RetryScheduled(
                    tool_call_id=call.id, attempt=attempt_no, delay_s=attempt.retry_delay_s, reason=reason
                )
            )
            rec.touch(call)
            self.sleep(delay)

    def _escalate(self, spec: ToolCallSpec, call: ToolCallRecord, denial: str) -> bool:
        requirement = decide_escalation(self.config.policy)
        if requirement.outcome is Outcome.FORBID:
            return False
        reason = f"the command failed in the sandbox ({denial} blocked); retry without it?"
        answer = self._ask(spec, call, "escalation", reason, frozenset())
        if answer.approved and call.approval_source == ApprovalSource.NOT_REQUIRED.value:
            # The run needed a human after all; a cached or human capability approval keeps its own source.
            call.approval_source = ApprovalSource.HUMAN.value
        return answer.approved

    def _attempt(self, spec: ToolCallSpec, call: ToolCallRecord, sandbox: SandboxChoice) -> AttemptResult:
        started = time.monotonic()
        try:
            if spec.kind is ToolKind.EDIT:
                result = run_edit(spec)
            elif spec.kind is ToolKind.FETCH:
                result = run_fetch(spec)
            else:
                result = run_shell(self, spec, call, sandbox)
        except ExecError as exc:
            result = AttemptResult(error=exc)
        except OSError as exc:
            result = AttemptResult(error=exc, output=f"{type(exc).__name__}: {exc}")
        result.duration_ms = round((time.monotonic() - started) * 1000, 3)
        return result
