"""An agent step's own record: the step is one tool call of the run (kind ``agent``) that starts its agent;
what the agent does is gated call by call (codex.py). This module opens and closes that record around the
driver, and is ``execute_call``'s way in (``run_agent_call``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from codex_orchestrator.agents import transcript
from codex_orchestrator.agents.codex import AGENT, CallRunner, CodexDriver, CodexStep, run_directly
from codex_orchestrator.agents.errors import AgentError, AgentInterrupted
from codex_orchestrator.approvals import Approver
from codex_orchestrator.call_recorder import CallRecorder
from codex_orchestrator.clock import utc_now
from codex_orchestrator.gate import ToolOrchestrator
from codex_orchestrator.policy import CallFacts, Capability, ToolKind, decide
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.toolcall import ToolCallSpec

if TYPE_CHECKING:
    from codex_orchestrator.execute import CallInput


def run_codex_step(
    step: CodexStep,
    recorder: CallRecorder,
    approver: Approver,
    *,
    run_call: CallRunner = run_directly,
    prior: ToolCallRecord | None = None,
    prefect_task_run_id: str | None = None,
) -> ToolCallRecord:
    """Run an agent step (see the module docstring); returns its record, already written."""
    rec = recorder
    call = ToolCallRecord(
        id=step.call_id,
        step=step.step,
        milestone=step.milestone,
        kind=ToolKind.AGENT.value,
        command=rec.redact(f"{AGENT}: {step.prompt.strip().splitlines()[0][:200]}"),
        cwd=rec.rel(step.cwd),
        backend="codex-app-server",
        needs=sorted(c.value for c in ({Capability.READ} | step.declared)),
        status="pending",
        started_at=utc_now(),
        prefect_task_run_id=prefect_task_run_id,
    )
    if prior is not None:
        call.order = prior.order
        call.lineage = [*prior.lineage]
    rec.announce(call)
    started = time.monotonic()
    # 1. the step itself: it starts codex; what codex does is gated call by call
    facts = CallFacts(
        ToolKind.AGENT, frozenset({Capability.READ} | step.declared), False, step.approval_required
    )
    requirement = decide(step.gate.policy, step.gate.profile, facts)
    call.approval_outcome = requirement.outcome.value
    call.approval_reason = requirement.reason
    gate = ToolOrchestrator(recorder=rec, config=step.gate, approver=approver)
    spec = ToolCallSpec(step=step.step, milestone=step.milestone, kind=ToolKind.AGENT, cwd=step.cwd)
    driver = CodexDriver(step, rec, approver, run_call)
    error: AgentError | None = None
    try:
        if gate.approve(spec, call, requirement, facts.needs) is not None:
            call.status = "running"
            rec.touch(call)
            driver.run(call)
            call.status = "succeeded"
    except AgentError as exc:
        error = exc
        call.status = "timed-out" if isinstance(exc, AgentInterrupted) and exc.why == "timeout" else "failed"
        call.error = rec.redact(str(exc))
        call.output_tail = rec.redact.tail(exc.stderr_tail)
    except BaseException as exc:
        call.status = "failed"
        call.error = rec.redact(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        call.duration_ms = round((time.monotonic() - started) * 1000, 3)
        call.finished_at = utc_now()
        call.sandbox.mode = step.gate.sandbox.value if step.gate.enabled else "none"
        call.sandbox.state = "sandboxed" if driver.client is not None and driver._socket_dir else "none"
        if call.status != "denied":
            status: Literal["completed", "failed", "interrupted"] = (
                "completed"
                if call.status == "succeeded"
                else ("interrupted" if isinstance(error, AgentInterrupted) else "failed")
            )
            rec.events.emit(
                transcript.finished(
                    step=step.step,
                    call_id=step.call_id,
                    status=status,
                    turns=driver.turns,
                    error=call.error,
                )
            )
        rec.events.emit(
            ev.ToolCallFinished(
                tool_call_id=call.id,
                status=call.status,
                exit_code=None,
                attempts=1 if driver.turns else 0,
                approval_source=call.approval_source or "not-required",
                sandbox_state=call.sandbox.state,
                duration_ms=call.duration_ms,
            )
        )
        rec.tracer.record_call(call)
        rec.finish_call(call)
    step_round_trips.extend(driver.round_trips_ms)
    return call


def run_agent_call(
    call: CallInput,
    recorder: CallRecorder,
    approver: Approver,
    spec: ToolCallSpec,
    secrets: Mapping[str, str],
    prior: ToolCallRecord | None,
    prefect_task_run_id: str | None,
    run_call: CallRunner | None,
) -> ToolCallRecord:
    """``execute_call``'s way into an agent step: the step by value (``CodexStep``) from its ``CallInput``."""
    from codex_orchestrator.execute import _refused

    if call.instance.ssh is not None:
        return _refused(
            recorder, call, prior, f"agent {call.step.agent} runs on this machine only, not over SSH"
        )
    step = call.step
    codex_step = CodexStep(
        call_id=call.call_id,
        step=step.name,
        milestone=call.milestone,
        prompt=step.prompt or "",
        workspace=Path(call.run.workspace).resolve(),
        cwd=spec.cwd,
        agent_dir=recorder.paths.run_dir / "agents" / call.call_id,
        gate=call.gate.config(),
        codex_config=dict(step.codex_config),
        codex_bin=step.codex_bin,
        timeout_s=step.timeout_s,
        declared=frozenset(step.capabilities),
        approval_required=step.approval == "required",
        secrets=dict(secrets),
    )
    return run_codex_step(
        codex_step,
        recorder,
        approver,
        run_call=run_call or run_directly,
        prior=prior,
        prefect_task_run_id=prefect_task_run_id,
    )


# Round trips (ms) of every agent call answered without a person in this process (bench/agent_gate.py reads it).
step_round_trips: list[float] = []
