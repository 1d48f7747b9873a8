"""One agent tool call through the gate: codex's approval request → our record → decision → codex's answer →
the item's completion.

1. classify (decisions.agent_call) and record the call (a ``tool_call.started`` event, the call's file);
2. decide with the run's policy and profile (decisions.requirement, the gate's ``approve``: session cache, then the
   approver — a paused ``approval-<id>`` flow run under Prefect);
3. answer codex: run → ``accept``, approve-for-session → ``acceptForSession``, approve-and-remember →
   ``acceptWithExecpolicyAmendment`` (with the rule codex proposed), forbid or deny → ``decline``;
4. an accepted call's record finishes when codex reports the item completed (its exit code and output).
Fail closed: anything that goes wrong before the answer is sent answers ``decline``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_orchestrator.agents.decisions import (
    AgentCall,
    agent_call,
    agent_call_id,
    inner_command,
    requirement,
)
from codex_orchestrator.agents.protocol import Decision, decision_answer
from codex_orchestrator.approvals import Announce, ApprovalAnswer, ApprovalRequest
from codex_orchestrator.approvals import Decision as Answer
from codex_orchestrator.call_recorder import CallRecorder
from codex_orchestrator.clock import utc_now
from codex_orchestrator.gate import ToolOrchestrator
from codex_orchestrator.policy import Capability, Outcome, Requirement
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.rules.apply import RulesError, rule_record, verdict_for
from codex_orchestrator.rules.verdict import NO_VERDICT
from codex_orchestrator.toolcall import ToolCallSpec

if TYPE_CHECKING:
    from codex_orchestrator.agents.app_server import ServerRequest
    from codex_orchestrator.agents.codex import CodexDriver

# A task-run name is a line in the Prefect UI: the command, cut here.
NAME_MAX_CHARS = 80


class ItemWaiters:
    """Accepted calls wait here for codex's ``item/completed`` of their item (which may come first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}
        self._items: dict[str, Mapping[str, Any]] = {}
        self._closed: str | None = None

    def expect(self, item_id: str) -> threading.Event:
        with self._lock:
            event = self._events.setdefault(item_id, threading.Event())
            if item_id in self._items or self._closed is not None:
                event.set()
            return event

    def complete(self, item_id: str, item: Mapping[str, Any]) -> None:
        with self._lock:
            self._items[item_id] = item
            event = self._events.get(item_id)
        if event is not None:
            event.set()

    def result(self, item_id: str) -> Mapping[str, Any] | None:
        with self._lock:
            return self._items.get(item_id)

    def close(self, why: str) -> None:
        with self._lock:
            self._closed = why
            events = list(self._events.values())
        for event in events:
            event.set()

    @property
    def closed(self) -> str | None:
        return self._closed


class _Recording:
    """Wraps the run's approver to keep the answer (approve-for-session becomes codex's acceptForSession)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.answer: ApprovalAnswer | None = None

    def ask(self, request: ApprovalRequest, announce: Announce) -> ApprovalAnswer:
        self.answer = self.inner.ask(request, announce)
        return self.answer


class AgentCallGate:
    """One approval request of codex, made a gated tool call (the module docstring's four steps)."""

    def __init__(self, driver: CodexDriver, request: ServerRequest, received: float) -> None:
        self.driver = driver
        self.request = request
        self.received = received
        step = driver.step
        item = driver.file_changes.get(str(request.params.get("itemId")))
        self.call: AgentCall | None
        try:
            self.call = agent_call(
                request.method,
                request.params,
                step_call_id=step.call_id,
                workspace=step.workspace,
                file_change=item,
            )
            self.name = self.call.display.splitlines()[0][:NAME_MAX_CHARS] or request.method
        except ValueError:  # params codex should never send: refused below, unclassified
            self.call = None
            self.name = request.method
        self._answered = threading.Lock()
        self._sent = False

    def answer(self, decision: Decision) -> None:
        """Send codex the answer once (a late second answer — after a cancel — is dropped)."""
        with self._answered:
            if self._sent:
                return
            self._sent = True
        client = self.driver.client
        if client is None:
            return
        try:
            client.respond(
                self.request.id, decision_answer(self.request.method, decision, self.request.params)
            )
        except Exception:  # codex is gone: its turn ends without this call
            return

    def run(self) -> ToolCallRecord:
        driver = self.driver
        step = driver.step
        rec = call_recorder(driver)
        call = self.call
        if call is None:
            self.answer("decline")
            raise ValueError(f"codex sent a malformed {self.request.method}: declined")
        record = ToolCallRecord(
            id=call.id,
            step=step.step,
            milestone=step.milestone,
            kind=call.kind.value,
            command=rec.redact(call.display),
            cwd=rec.rel(call.cwd),
            backend="codex-app-server",
            needs=sorted(c.value for c in call.facts.needs),
            status="pending",
            started_at=utc_now(),
            parent_call_id=step.call_id,
            session_id=call.item_id,
            prefect_task_run_id=_current_task_run_id(),
        )
        started = time.monotonic()
        rec.announce(record)
        try:
            with rec.tracer.span(
                "tool_call",
                **{"codex.tool_call.id": record.id, "codex.step": step.step, "codex.tool": record.kind},
            ):
                decision = self._decide(rec, call, record)
                if decision == "acceptForSession":
                    driver.session_grants.add(call.display)
                if decision in ("accept", "acceptForSession", "acceptWithExecpolicyAmendment"):
                    waiter = driver.waiters.expect(call.item_id)
                    self.answer(decision)
                    if record.approval_source in ("not-required", "cache", "policy"):
                        driver.round_trips_ms.append((time.monotonic() - self.received) * 1000)
                    self._await_item(rec, call, record, waiter)
                else:
                    self.answer("decline")
                    driver.round_trips_ms.append((time.monotonic() - self.received) * 1000)
                    driver.counts["declined"] = driver.counts.get("declined", 0) + 1
        except BaseException as exc:
            self.answer("decline")  # fail closed
            record.status = "failed"
            record.error = rec.redact(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self._finish(rec, record, started)
        return record

    def _decide(self, rec: CallRecorder, call: AgentCall, record: ToolCallRecord) -> Decision:
        driver = self.driver
        step = driver.step
        network = Capability.NETWORK in (step.gate.profile | step.declared)
        try:
            verdict = verdict_for(step.gate.rules, step.workspace, call.facts, call.cwd)
        except RulesError as exc:  # a rules file broke during the run: refuse rather than guess
            verdict, needed = NO_VERDICT, Requirement(Outcome.FORBID, f"the rules do not load: {exc}")
        else:
            needed = requirement(
                call,
                policy=step.gate.policy,
                profile=step.gate.profile,
                workspace=step.workspace,
                network_available=network,
                verdict=verdict,
            )
        record.approval_outcome = needed.outcome.value
        record.approval_reason = rec.redact(needed.reason)
        record.rule = rule_record(verdict)
        approver = _Recording(driver.approver)
        gate = ToolOrchestrator(recorder=rec, config=step.gate, approver=approver)
        spec = ToolCallSpec(step=step.step, milestone=step.milestone, kind=call.kind, cwd=call.cwd)
        # The approval form shows the patch's diff with its one-line description; the record keeps the line.
        shown = record.command
        if call.diff:
            record.command = rec.redact(f"{call.display}\n\n{call.diff}")
        try:
            granted = gate.approve(spec, record, needed, call.facts.needs, call.amendment)
        finally:
            record.command = shown
        if granted is None:
            record.status = "denied"
            return "decline"
        answer = approver.answer
        if needed.outcome is not Outcome.ASK or answer is None:
            return "accept"
        if answer.decision is Answer.APPROVE_FOR_SESSION:
            return "acceptForSession"
        if answer.decision is Answer.APPROVE_AND_REMEMBER and call.proposed:
            return "acceptWithExecpolicyAmendment"  # codex adds its rule too: its next match is not asked
        return "accept"

    def _await_item(
        self, rec: CallRecorder, call: AgentCall, record: ToolCallRecord, waiter: threading.Event
    ) -> None:
        driver = self.driver
        if call.method.endswith("permissions/requestApproval"):
            record.status = "succeeded"  # a grant has no item of its own to wait for
            return
        record.status = "running"
        rec.events.emit(ev.AttemptStarted(tool_call_id=record.id, attempt=1, sandboxed=True))
        rec.touch(record)
        waiter.wait()
        item = driver.waiters.result(call.item_id)
        if item is None:
            record.status = "failed"
            record.error = driver.waiters.closed or "codex did not report the call completed"
            return
        settle_from_item(rec, record, item)

    def _finish(self, rec: CallRecorder, record: ToolCallRecord, started: float) -> None:
        finish(self.driver, rec, record, started)


def settle_from_item(rec: CallRecorder, record: ToolCallRecord, item: Mapping[str, Any]) -> None:
    """A call's outcome from codex's completed item: status, exit code, output (redacted)."""
    status = str(item.get("status") or "")
    exit_code = item.get("exitCode")
    record.exit_code = exit_code if isinstance(exit_code, int) else None
    output = item.get("aggregatedOutput")
    if isinstance(output, str):
        record.output_tail = rec.redact.tail(output)
        record.output_bytes = len(output.encode())
    if status == "completed" and (record.exit_code in (None, 0)):
        record.status = "succeeded"
    elif status == "declined":
        record.status = "denied"
        record.error = "codex did not run it"
    else:
        record.status = "failed"
        record.error = f"exit code {record.exit_code}" if record.exit_code is not None else f"codex: {status}"
    rec.events.emit(
        ev.AttemptFinished(
            tool_call_id=record.id,
            attempt=1,
            exit_code=record.exit_code,
            duration_ms=float(item.get("durationMs") or 0),
            error=record.error,
            session_id=None,
        )
    )


def finish(driver: CodexDriver, rec: CallRecorder, record: ToolCallRecord, started: float) -> None:
    """The call's final record: its end event, metrics, the durable write."""
    record.duration_ms = round((time.monotonic() - started) * 1000, 3)
    record.finished_at = utc_now()
    record.sandbox.mode = driver.step.gate.sandbox.value
    record.sandbox.state = "sandboxed" if driver._socket_dir is not None else "none"
    rec.events.emit(
        ev.ToolCallFinished(
            tool_call_id=record.id,
            status=record.status,
            exit_code=record.exit_code,
            attempts=1 if record.status not in ("denied",) else 0,
            approval_source=record.approval_source or "not-required",
            sandbox_state=record.sandbox.state,
            duration_ms=record.duration_ms,
        )
    )
    rec.tracer.record_call(record)
    rec.finish_call(record)


def call_recorder(driver: CodexDriver) -> CallRecorder:
    """A recorder of its own for one agent call (a recorder is not shared between threads)."""
    parent = driver.recorder
    return CallRecorder(
        parent.store,
        events=parent.events,
        tracer=parent.tracer,
        redact=parent.redact,
        folder=parent.folder,
        instance=parent.instance,
    )


def record_unasked(driver: CodexDriver, item: Mapping[str, Any]) -> ToolCallRecord:
    """A command or patch codex ran without asking: after an approve-for-session it does not ask again for the
    same command. Recorded as a call of its own (approval from the cache); anything else is flagged."""
    step = driver.step
    rec = call_recorder(driver)
    command = inner_command(str(item.get("command") or "")) if item.get("type") == "commandExecution" else ""
    display = command or "apply patch: " + ", ".join(
        str(c.get("path")) for c in item.get("changes") or [] if isinstance(c, Mapping)
    )
    item_id = str(item.get("id"))
    record = ToolCallRecord(
        id=agent_call_id(step.call_id, driver.thread_id, driver.turn_id, item_id),
        step=step.step,
        milestone=step.milestone,
        kind="shell" if command else "edit",
        command=rec.redact(display),
        cwd=rec.rel(Path(str(item.get("cwd") or step.cwd))),
        backend="codex-app-server",
        status="pending",
        started_at=utc_now(),
        parent_call_id=step.call_id,
        session_id=item_id,
        prefect_task_run_id=_current_task_run_id(),
    )
    started = time.monotonic()
    rec.announce(record)
    granted = display in driver.session_grants
    record.approval_outcome = "skip"
    record.approval_source = "cache" if granted else "not-required"
    record.approval_reason = (
        "approved for the session earlier: codex did not ask again"
        if granted
        else "codex ran it without asking the gate"
    )
    if not granted:
        driver.counts["unasked"] = driver.counts.get("unasked", 0) + 1
    settle_from_item(rec, record, item)
    finish(driver, rec, record, started)
    return record


def _current_task_run_id() -> str | None:
    """The Prefect task run this call runs in, when it runs in one (the core does not import Prefect)."""
    import sys

    context = sys.modules.get("prefect.context")
    if context is None:
        return None
    task_ctx = context.TaskRunContext.get()
    return str(task_ctx.task_run.id) if task_ctx is not None else None
