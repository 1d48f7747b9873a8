"""One tool call from its parameters, in whatever process this is: the single core path that the Prefect
tool-call task, ``exec`` and the Python API all use.

``CallInput`` is the call by value (run reference, deterministic call id, the step, gate settings, secret
*names*, target instance): small, free of secrets, safe to pickle to a Dask worker. ``execute_call`` reads the
secret values from this process's environment, opens the run's records, skips a call that already succeeded
(a resumed run) and otherwise runs it through the gate.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from codex_orchestrator.approvals import Approver
from codex_orchestrator.call_recorder import CallRecorder
from codex_orchestrator.clock import utc_now
from codex_orchestrator.errors import RequestError
from codex_orchestrator.exec.backend import ExecBackend
from codex_orchestrator.exec.launcher import POOL as SANDBOXES
from codex_orchestrator.exec.local import LocalPtyBackend
from codex_orchestrator.exec.session import ExecSession, ExecSessionManager
from codex_orchestrator.gate import GateConfig, ToolOrchestrator
from codex_orchestrator.hooks import HOOK_CONTEXT_ENV, HookSettings, run_hook
from codex_orchestrator.notify import NotificationTarget, attach_notifier
from codex_orchestrator.policy import ApprovalPolicy, Capability
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import DEFAULT_OUTPUT_BUDGET_BYTES, EventLog, Listener
from codex_orchestrator.records.manifest import HookRecord, ToolCallRecord
from codex_orchestrator.records.store import RunRef, RunStore
from codex_orchestrator.redact import Redactor
from codex_orchestrator.request import FetchSettings, InstanceSettings, RetrySettings, RunRequest, Step
from codex_orchestrator.rules.sources import RulesSettings
from codex_orchestrator.sandbox import SandboxMode
from codex_orchestrator.telemetry import RunTracer, joined
from codex_orchestrator.toolcall import ToolCallSpec, spec_from_step, step_display

if TYPE_CHECKING:
    from codex_orchestrator.exec.ssh import SshTarget


class GateSettings(BaseModel):
    """The gate's configuration for a run, by value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: ApprovalPolicy = ApprovalPolicy.ON_REQUEST
    profile: list[Capability] = Field(default_factory=lambda: [Capability.READ])
    sandbox: SandboxMode = SandboxMode.WORKSPACE_WRITE
    enabled: bool = True
    approval_timeout_s: int = 3600
    rules: RulesSettings = Field(default_factory=RulesSettings, description="exec-policy rules files")

    @classmethod
    def from_request(cls, request: RunRequest) -> GateSettings:
        return cls(
            policy=request.approval_policy,
            profile=list(request.profile),
            sandbox=request.sandbox,
            enabled=request.gate_enabled(),
            approval_timeout_s=request.approval_timeout_s,
            rules=request.rules,
        )

    def config(self) -> GateConfig:
        return GateConfig(
            policy=self.policy,
            profile=frozenset(self.profile),
            sandbox=self.sandbox,
            enabled=self.enabled,
            approval_timeout_s=self.approval_timeout_s,
            rules=self.rules,
        )


LOCAL = InstanceSettings()


class CallInput(BaseModel):
    """Everything one tool call needs, by value. No secret values: ``secret_env`` names them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: RunRef
    call_id: str
    milestone: str
    step: Step
    gate: GateSettings = Field(default_factory=GateSettings)
    default_retry: RetrySettings = Field(default_factory=RetrySettings)
    secret_env: list[str] = Field(default_factory=list)
    instance: InstanceSettings = LOCAL
    backend_cwd: str | None = Field(default=None, description="working directory on an SSH host")
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    output_budget_bytes: int = Field(
        default=DEFAULT_OUTPUT_BUDGET_BYTES, description="how much output the event log keeps of this call"
    )
    hold_instance_slot: bool = Field(
        default=False,
        description="hold a slot of the instance's Prefect global concurrency limit while running",
    )
    notifications: list[NotificationTarget] = Field(default_factory=list, description="notify.py targets")
    hooks: HookSettings = Field(default_factory=HookSettings, description="pre/post tool-call hooks")
    traceparent: str | None = Field(
        default=None,
        description="W3C trace context of the span that submitted the call: a call in another process joins "
        "its run's trace",
    )
    otel_export: bool = Field(default=True, description="export the call's spans and metrics over OTLP")
    claim_scope: str | None = Field(
        default=None,
        description="set when the call may be handed to several task workers: it runs once per scope "
        "(codex_orchestrator/call_claim.py)",
    )


def instance_limit_name(instance: str) -> str:
    """The Prefect global concurrency limit of an instance: shared by every run that uses it."""
    return f"codex-instance-{instance}"


def call_spec(call: CallInput, extra_env: Mapping[str, str] | None = None) -> ToolCallSpec:
    """The gate's view of ``call`` (paths resolved inside the workspace); RequestError if one escapes it."""
    return spec_from_step(
        call.step,
        call_id=call.call_id,
        workspace=Path(call.run.workspace),
        milestone=call.milestone,
        default_retry=call.default_retry,
        extra_env=extra_env or {},
        fetch=call.fetch,
    )


def read_secrets(names: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values of the named secrets, read here (where the call runs); unset names are left out."""
    env = os.environ if environ is None else environ
    return {name: env[name] for name in names if env.get(name)}


# Live OS resources cannot travel by value: named shells (a step's `session:`) stay in the process that opened
# them, keyed by run, and are closed when the run ends here (``close_run_sessions``).
_SHELLS: dict[str, ToolOrchestrator] = {}
_SHELLS_LOCK = threading.Lock()


def close_run_sessions(run_id: str) -> None:
    """End the run's named shells and its kept-alive sandboxes (``exec/launcher.py``) in this process."""
    with _SHELLS_LOCK:
        gate = _SHELLS.pop(run_id, None)
    if gate is not None:
        gate.sessions.close_all()
    SANDBOXES.close_run(run_id)


BlockResolver = Callable[[str], "SshTarget"]


def _backend_for(
    instance: InstanceSettings, resolve_block: BlockResolver | None = None
) -> tuple[ExecBackend, tuple[str, ...]]:
    if instance.ssh is None:
        return LocalPtyBackend(), ()
    from codex_orchestrator.exec.ssh import SshBackend, SshTarget

    ssh = instance.ssh
    if ssh.block is not None:
        if resolve_block is None:
            raise RequestError(
                f"SSH host block {ssh.block!r} can only be loaded under Prefect",
                field=f"instances.{instance.name}",
            )
        target = resolve_block(ssh.block)
    else:
        if not ssh.host:
            raise RequestError("an SSH instance needs 'host' or 'block'", field=f"instances.{instance.name}")
        target = SshTarget(
            host=ssh.host,
            port=ssh.port,
            user=ssh.user,
            key_file=ssh.key_file,
            known_hosts=ssh.known_hosts,
            trust_on_first_use=ssh.trust_on_first_use,
            connect_timeout_s=ssh.connect_timeout_s,
            sandbox_command=tuple(ssh.sandbox_command),
        )
    return SshBackend(target), tuple(target.sandbox_command)


def stdin_at_eof(session: ExecSession) -> None:
    """A call's input is empty unless someone attaches to it: end-of-file at once, as ``</dev/null`` would give.

    The child's stdin is its PTY, which nobody else writes to; the terminal's end-of-file character makes its
    first read return 0 bytes, locally and over SSH alike, instead of blocking until the step's timeout.
    """
    session.write(b"\x04")


def execute_call(
    call: CallInput,
    approver: Approver,
    *,
    listeners: Sequence[Listener] = (),
    on_session: Callable[[ExecSession], None] | None = None,  # default: stdin at end-of-file
    backend: tuple[ExecBackend, tuple[str, ...]] | None = None,
    resolve_block: BlockResolver | None = None,
    prefect_task_run_id: str | None = None,
    attempt_slot: Callable[[], AbstractContextManager[object]] | None = None,
    agent_call_runner: Callable[[str, Callable[[], ToolCallRecord]], object] | None = None,
) -> ToolCallRecord:
    """Run one call of a run through the gate and return its record (already written to the run's records).

    An agent step driven through its protocol runs its agent instead (agents/), each of the agent's tool calls
    through ``agent_call_runner`` (under Prefect: a task run each)."""
    store = RunStore(call.run)
    prior = store.read_call(call.call_id)
    if prior is not None and prior.status == "succeeded":
        return prior  # a resumed run: this call's effects already happened
    secrets = read_secrets(call.secret_env)
    redact = Redactor(secrets.values())
    events = EventLog(
        store.paths.events, call.run.run_id, redact, output_budget_bytes=call.output_budget_bytes
    )
    for listener in listeners:
        events.add_listener(listener)
    attach_notifier(events, store, list(call.notifications))
    tracer = RunTracer(
        store.paths.traces,
        run_id=call.run.run_id,
        task_id=call.run.task_id,
        redact=redact,
        export=call.otel_export,
    )
    recorder = CallRecorder(store, events=events, tracer=tracer, redact=redact, instance=call.instance.name)
    try:
        try:
            spec = call_spec(call, secrets)
        except RequestError as exc:
            return _refused(recorder, call, prior, str(exc))
        if call.backend_cwd is not None:
            spec = replace(spec, backend_cwd=call.backend_cwd)
        elif call.instance.ssh is not None:  # the workspace as that host sees it (the same path by default)
            root = call.instance.workdir or call.run.workspace
            spec = replace(spec, backend_cwd=str(Path(root) / call.step.cwd))
        # The pre hook comes first: a call it denies bothers no reviewer.
        pre = run_hook(call.hooks, "pre_tool_call", _hook_payload(call, recorder, spec.display), cwd=spec.cwd)
        if pre is not None and pre.decision == "deny":
            return _refused(
                recorder, call, prior, f"pre_tool_call hook: {pre.reason}", source="hook", hook=pre
            )
        if pre is not None and pre.context:
            spec = replace(spec, env={**spec.env, HOOK_CONTEXT_ENV: pre.context})
        if call.step.drives_agent():
            from codex_orchestrator.agents.step import run_agent_call  # exec's start-up never imports it

            record = run_agent_call(
                call, recorder, approver, spec, secrets, prior, prefect_task_run_id, agent_call_runner
            )
            return _after_hooks(call, recorder, record, pre)
        own = backend is None
        exec_backend, prefix = backend if backend is not None else _backend_for(call.instance, resolve_block)
        try:
            gate = _gate_for(call, recorder, approver, exec_backend, prefix, on_session or stdin_at_eof)
            gate.attempt_slot = attempt_slot or nullcontext
            with joined(call.traceparent):
                record = gate.run(spec, prior, prefect_task_run_id=prefect_task_run_id)
                return _after_hooks(call, recorder, record, pre)
        finally:
            close = getattr(exec_backend, "close", None)
            if own and call.step.session is None and callable(close):
                close()  # an SSH backend's pooled connection; a named session's shell keeps it
    finally:
        events.close(sync=False)  # the finished call record is this call's sync point (call_recorder.py)
        tracer.shutdown()


def _gate_for(
    call: CallInput,
    recorder: CallRecorder,
    approver: Approver,
    backend: ExecBackend,
    prefix: tuple[str, ...],
    on_session: Callable[[ExecSession], None] | None,
) -> ToolOrchestrator:
    if call.step.session is None:
        return ToolOrchestrator(
            recorder=recorder,
            config=call.gate.config(),
            approver=approver,
            backend=backend,
            sandbox_prefix=prefix,
            on_session=on_session,
        )
    # A named shell keeps its cwd and environment across the calls of a run in this process.
    with _SHELLS_LOCK:
        gate = _SHELLS.get(call.run.run_id)
        if gate is None:
            gate = _SHELLS[call.run.run_id] = ToolOrchestrator(
                recorder=recorder, config=call.gate.config(), approver=approver, sessions=ExecSessionManager()
            )
    gate.recorder = recorder
    gate.approver = approver
    gate.backend = backend
    gate.sandbox_prefix = prefix
    gate.on_session = on_session
    return gate


def _hook_payload(call: CallInput, recorder: CallRecorder, command: str) -> dict[str, object]:
    return {
        "run_id": call.run.run_id,
        "task_id": call.run.task_id,
        "tool_call_id": call.call_id,
        "milestone": call.milestone,
        "step": call.step.name,
        "kind": call.step.kind.value,
        "command": recorder.redact(command),
        "cwd": call.step.cwd,
        "capabilities": [c.value for c in call.step.capabilities],
    }


def _after_hooks(
    call: CallInput, recorder: CallRecorder, record: ToolCallRecord, pre: HookRecord | None
) -> ToolCallRecord:
    """Record the pre hook's decision and run the post hook, which sees the call's record."""
    if pre is None and call.hooks.command("post_tool_call") is None:
        return record
    payload = {**_hook_payload(call, recorder, record.command), "record": record.model_dump(mode="json")}
    post = run_hook(call.hooks, "post_tool_call", payload, cwd=Path(call.run.workspace))
    record.hooks = [h.model_copy(update=_redacted(recorder, h)) for h in (pre, post) if h is not None]
    recorder.finish_call(record)
    return record


def _redacted(recorder: CallRecorder, hook: HookRecord) -> dict[str, str | None]:
    return {
        "reason": recorder.redact(hook.reason) if hook.reason else None,
        "context": recorder.redact(hook.context) if hook.context else None,
    }


def _refused(
    recorder: CallRecorder,
    call: CallInput,
    prior: ToolCallRecord | None,
    reason: str,
    *,
    source: Literal["policy", "hook"] = "policy",
    hook: HookRecord | None = None,
) -> ToolCallRecord:
    """A call refused before the gate (its cwd or path escapes the workspace, or a pre hook denied it):
    recorded as denied, with why."""
    now = utc_now()
    record = ToolCallRecord(
        id=call.call_id,
        step=call.step.name,
        milestone=call.milestone,
        kind=call.step.kind.value,
        command=recorder.redact(step_display(call.step)),
        cwd=call.step.cwd,
        status="denied",
        approval_source=source,
        error=recorder.redact(f"refused: {reason}"),
        started_at=now,
        finished_at=now,
        duration_ms=0.0,
        depends_on=list(call.step.needs),
        backend="orchestrator",
        order=prior.order if prior is not None else 0,
        hooks=[hook.model_copy(update=_redacted(recorder, hook))] if hook is not None else [],
    )
    recorder.announce(record)
    if source == "hook":
        recorder.events.emit(
            ev.ApprovalResolved(tool_call_id=record.id, outcome="denied", source="hook", reason=record.error)
        )
    recorder.events.emit(
        ev.ToolCallFinished(
            tool_call_id=record.id,
            status="denied",
            exit_code=None,
            attempts=0,
            approval_source=source,
            sandbox_state="none",
            duration_ms=0.0,
        )
    )
    recorder.finish_call(record)
    return record


def record_unplaced(
    run: RunRef, call_id: str, milestone: str, step: Step, reason: str, *, secret_env: Sequence[str] = ()
) -> ToolCallRecord:
    """A step no instance that is up can take: recorded as failed, with why."""
    return record_skipped(run, call_id, milestone, step, reason, status="failed", secret_env=secret_env)


def record_skipped(
    run: RunRef,
    call_id: str,
    milestone: str,
    step: Step,
    reason: str,
    *,
    status: Literal["skipped", "failed"] = "skipped",
    secret_env: Sequence[str] = (),
) -> ToolCallRecord:
    """A step that can never run (its needs failed, or the milestone stopped): recorded as skipped."""
    store = RunStore(run)
    prior = store.read_call(call_id)
    events = EventLog(store.paths.events, run.run_id)
    try:
        record = ToolCallRecord(
            id=call_id,
            step=step.name,
            milestone=milestone,
            kind=step.kind.value,
            command=Redactor(read_secrets(secret_env).values())(step_display(step)),
            cwd=step.cwd,
            status=status,
            error=reason,
            depends_on=list(step.needs),
        )
        if prior is not None:
            record.lineage = [*prior.lineage]
        event = events.emit(
            ev.ToolCallSkipped(tool_call_id=call_id, step=step.name, reason=reason, milestone=milestone)
        )
        record.order = prior.order if prior is not None else event.seq
        record.updated_at = utc_now()
        store.write_call(record, durable=True)
        return record
    finally:
        events.close()
