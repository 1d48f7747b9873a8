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
from codex_orchestrator.exec.local import LocalPtyBackend
from codex_orchestrator.exec.session import ExecSession, ExecSessionManager
from codex_orchestrator.gate import GateConfig, ToolOrchestrator
from codex_orchestrator.policy import ApprovalPolicy, Capability
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import DEFAULT_OUTPUT_BUDGET_BYTES, EventLog, Listener
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.records.store import RunRef, RunStore
from codex_orchestrator.redact import Redactor
from codex_orchestrator.request import FetchSettings, InstanceSettings, RetrySettings, RunRequest, Step
from codex_orchestrator.sandbox import SandboxMode
from codex_orchestrator.telemetry import RunTracer
from codex_orchestrator.toolcall import ToolCallSpec, spec_from_step

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

    @classmethod
    def from_request(cls, request: RunRequest) -> GateSettings:
        return cls(
            policy=request.approval_policy,
            profile=list(request.profile),
            sandbox=request.sandbox,
            enabled=request.gate_enabled(),
            approval_timeout_s=request.approval_timeout_s,
        )

    def config(self) -> GateConfig:
        return GateConfig(
            policy=self.policy,
            profile=frozenset(self.profile),
            sandbox=self.sandbox,
            enabled=self.enabled,
            approval_timeout_s=self.approval_timeout_s,
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
    with _SHELLS_LOCK:
        gate = _SHELLS.pop(run_id, None)
    if gate is not None:
        gate.sessions.close_all()


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


def execute_call(
    call: CallInput,
    approver: Approver,
    *,
    listeners: Sequence[Listener] = (),
    on_session: Callable[[ExecSession], None] | None = None,
    backend: tuple[ExecBackend, tuple[str, ...]] | None = None,
    resolve_block: BlockResolver | None = None,
    prefect_task_run_id: str | None = None,
    attempt_slot: Callable[[], AbstractContextManager[object]] | None = None,
) -> ToolCallRecord:
    """Run one call of a run through the gate and return its record (already written to the run's records)."""
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
    tracer = RunTracer(store.paths.traces, run_id=call.run.run_id, task_id=call.run.task_id, redact=redact)
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
        own = backend is None
        exec_backend, prefix = backend if backend is not None else _backend_for(call.instance, resolve_block)
        try:
            gate = _gate_for(call, recorder, approver, exec_backend, prefix, on_session)
            gate.attempt_slot = attempt_slot or nullcontext
            return gate.run(spec, prior, prefect_task_run_id=prefect_task_run_id)
        finally:
            close = getattr(exec_backend, "close", None)
            if own and call.step.session is None and callable(close):
                close()  # an SSH backend's pooled connection; a named session's shell keeps it
    finally:
        events.close()
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


def _refused(
    recorder: CallRecorder, call: CallInput, prior: ToolCallRecord | None, reason: str
) -> ToolCallRecord:
    """A call refused before the gate (its cwd or path escapes the workspace): recorded as denied, with why."""
    now = utc_now()
    record = ToolCallRecord(
        id=call.call_id,
        step=call.step.name,
        milestone=call.milestone,
        kind=call.step.kind.value,
        command=recorder.redact(_display(call.step)),
        cwd=call.step.cwd,
        status="denied",
        approval_source="policy",
        error=recorder.redact(f"refused: {reason}"),
        started_at=now,
        finished_at=now,
        duration_ms=0.0,
        depends_on=list(call.step.needs),
        backend="orchestrator",
        order=prior.order if prior is not None else 0,
    )
    recorder.announce(record)
    recorder.events.emit(
        ev.ToolCallFinished(
            tool_call_id=record.id,
            status="denied",
            exit_code=None,
            attempts=0,
            approval_source="policy",
            sandbox_state="none",
            duration_ms=0.0,
        )
    )
    recorder.finish_call(record)
    return record


def _display(step: Step) -> str:
    if isinstance(step.command, list):
        import shlex

        return shlex.join(step.command)
    return step.command or step.path or step.url or ""


def record_unplaced(run: RunRef, call_id: str, milestone: str, step: Step, reason: str) -> ToolCallRecord:
    """A step no instance that is up can take: recorded as failed, with why."""
    return record_skipped(run, call_id, milestone, step, reason, status="failed")


def record_skipped(
    run: RunRef,
    call_id: str,
    milestone: str,
    step: Step,
    reason: str,
    *,
    status: Literal["skipped", "failed"] = "skipped",
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
            command="",
            cwd=step.cwd,
            status=status,
            error=reason,
            depends_on=list(step.needs),
        )
        if prior is not None:
            record.lineage = [*prior.lineage]
        event = events.emit(ev.ToolCallSkipped(tool_call_id=call_id, step=step.name, reason=reason))
        record.order = prior.order if prior is not None else event.seq
        record.updated_at = utc_now()
        store.write_call(record, durable=True)
        return record
    finally:
        events.close()
