"""One tool call as a run of its own (``codex-orchestrator exec``): records, gate, summary, exit code."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codex_orchestrator.approvals import Approver
from codex_orchestrator.exec.backend import ExecBackend
from codex_orchestrator.exec.errors import SSH_FAILURES
from codex_orchestrator.exec.local import LocalPtyBackend
from codex_orchestrator.exec.session import ExecSession, ExecSessionManager
from codex_orchestrator.gate import GateConfig, ToolOrchestrator, initial_requirement
from codex_orchestrator.policy import ApprovalPolicy, Capability, Outcome, ToolKind
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import Listener
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.records.paths import (
    RUNS_DIRNAME,
    RunPaths,
    new_run_id,
    validate_run_id,
    validate_task_id,
)
from codex_orchestrator.retry import RetryPolicy
from codex_orchestrator.run import EXIT_FAILED, RunRecorder
from codex_orchestrator.sandbox import SandboxMode
from codex_orchestrator.toolcall import ToolCallSpec

# Exit codes of `exec` when the command did not give one of its own (docs/cli.md).
EXIT_TIMED_OUT = 124
EXIT_DENIED = 125
EXIT_NOT_STARTED = 127
EXIT_SSH = 255  # connecting, authenticating, the host key, or the connection lost mid-call (as OpenSSH's ssh)


@dataclass(frozen=True)
class ExecOptions:
    argv: tuple[str, ...]
    workspace: Path
    cwd: Path
    task_id: str = "exec"
    run_id: str | None = None
    runs_dir: Path | None = None
    policy: ApprovalPolicy = ApprovalPolicy.ON_REQUEST
    profile: frozenset[Capability] = frozenset({Capability.READ, Capability.EDIT, Capability.RUN})
    sandbox: SandboxMode = SandboxMode.WORKSPACE_WRITE
    timeout_s: float = 600.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=1))
    env: Mapping[str, str] = field(default_factory=dict)
    declared: frozenset[Capability] = frozenset()
    approval_required: bool = False
    gate_enabled: bool = True
    approval_timeout_s: int = 3600
    remote_cwd: str | None = None
    kind: ToolKind = ToolKind.SHELL
    secrets: Sequence[str] = ()


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    status: str
    record: ToolCallRecord
    manifest: Path


def tool_call_spec(options: ExecOptions) -> ToolCallSpec:
    return ToolCallSpec(
        step="exec",
        milestone="exec",
        kind=options.kind,
        cwd=options.cwd.resolve(),
        command=options.argv,
        env=dict(options.env),
        declared=options.declared,
        requests_escalation=options.approval_required,
        timeout_s=options.timeout_s,
        retry=options.retry,
        backend_cwd=options.remote_cwd,
    )


def gate_config(options: ExecOptions) -> GateConfig:
    return GateConfig(
        policy=options.policy,
        profile=options.profile,
        sandbox=options.sandbox,
        enabled=options.gate_enabled,
        approval_timeout_s=options.approval_timeout_s,
    )


def may_ask_up_front(options: ExecOptions, backend: ExecBackend | None = None) -> bool:
    """Whether the gate's first step will ask a human: the same decision ``ToolOrchestrator.run`` makes."""
    _, requirement = initial_requirement(
        gate_config(options), tool_call_spec(options), backend or LocalPtyBackend()
    )
    return requirement.outcome is Outcome.ASK


def exit_code_for(record: ToolCallRecord) -> int:
    if record.status == "denied":
        return EXIT_DENIED
    if record.status == "timed-out":
        return EXIT_TIMED_OUT
    if record.exit_code is not None:
        return record.exit_code
    if record.failure in SSH_FAILURES:
        return EXIT_SSH
    return EXIT_NOT_STARTED if record.status == "failed" else EXIT_FAILED


def run_exec(
    options: ExecOptions,
    approver: Approver,
    *,
    backend: ExecBackend | None = None,
    sandbox_prefix: tuple[str, ...] = (),
    listeners: Sequence[Listener] = (),
    on_session: Callable[[ExecSession], None] | None = None,
    on_recorder: Callable[[RunRecorder], None] | None = None,
) -> ExecResult:
    """Record, gate and run ``options.argv``; the summary event carries the outcome."""
    workspace = options.workspace.resolve()
    paths = RunPaths(
        runs_dir=options.runs_dir or workspace / RUNS_DIRNAME,
        task_id=validate_task_id(options.task_id),
        run_id=validate_run_id(options.run_id or new_run_id()),
    )
    spec = tool_call_spec(options)
    request_record = {
        "argv": list(options.argv),
        "cwd": str(options.remote_cwd or spec.cwd),
        "policy": options.policy.value,
        "profile": sorted(c.value for c in options.profile),
        "sandbox": options.sandbox.value,
        "timeout_s": options.timeout_s,
        "env": dict(options.env),
    }
    recorder = RunRecorder(
        paths=paths,
        workspace=workspace,
        request=request_record,
        mode="exec",
        gate_enabled=options.gate_enabled,
        secrets=list(options.secrets),
        with_milestones=False,
    )
    for listener in listeners:
        recorder.events.add_listener(listener)
    if on_recorder is not None:
        on_recorder(recorder)
    sessions = ExecSessionManager()
    gate = ToolOrchestrator(
        recorder=recorder,
        config=gate_config(options),
        approver=approver,
        backend=backend or LocalPtyBackend(),
        sessions=sessions,
        sandbox_prefix=sandbox_prefix,
        on_session=on_session,
    )
    recorder.start()
    try:
        with recorder.tracer.span("run", **{"codex.mode": "exec"}):
            record = gate.run(spec)
    except BaseException as exc:
        recorder.finish("failed", EXIT_FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        sessions.close_all()
    code = exit_code_for(record)
    status = (
        "succeeded" if record.status == "succeeded" else ("denied" if record.status == "denied" else "failed")
    )
    summary = ev.Summary(
        status=record.status,
        exit_code=record.exit_code,
        attempts=len(record.attempts),
        approval_source=record.approval_source or "not-required",
        sandbox_state=record.sandbox.state,
        manifest=recorder.manifest_rel,
        duration_ms=record.duration_ms or 0.0,
        error=record.error,
    )
    recorder.finish(status, code, error=record.error, last=summary)  # type: ignore[arg-type]
    recorder.write_task_metrics()
    return ExecResult(exit_code=code, status=record.status, record=record, manifest=paths.manifest)
