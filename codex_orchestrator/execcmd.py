"""One tool call as a run of its own (``codex-orchestrator exec``): the call by value, its run, summary, exit code.

``exec`` opens and finishes its run through ``RunOwner`` and runs its call through ``execute_call``, exactly as
a request's run does; only the front end (terminal, JSON, SDK) differs. The same ``run_exec`` runs inside the
``exec-tool-call`` flow when the call must pause for an approval, in this process or on a worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from codex_orchestrator.approvals import Approver
from codex_orchestrator.errors import RequestError
from codex_orchestrator.exec.backend import ExecBackend
from codex_orchestrator.exec.errors import SSH_FAILURES
from codex_orchestrator.exec.local import LocalPtyBackend
from codex_orchestrator.exec.session import ExecSession
from codex_orchestrator.execute import CallInput, GateSettings, call_spec, execute_call, read_secrets
from codex_orchestrator.gate import initial_requirement
from codex_orchestrator.notify import targets_from_env
from codex_orchestrator.policy import ApprovalPolicy, Capability, Outcome, ToolKind
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import DEFAULT_OUTPUT_BUDGET_BYTES, Listener
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.records.paths import RUNS_DIRNAME, new_run_id, validate_run_id, validate_task_id
from codex_orchestrator.records.store import RunRef, RunStore
from codex_orchestrator.request import RetrySettings, Step
from codex_orchestrator.run import EXIT_FAILED, RunOwner, interrupt_exit_code
from codex_orchestrator.sandbox import SandboxMode
from codex_orchestrator.toolcall import call_id_for

# Exit codes of `exec` when the command did not give one of its own (docs/cli.md).
EXIT_TIMED_OUT = 124
EXIT_DENIED = 125
EXIT_NOT_STARTED = 127
EXEC_STEP = "exec"
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
    retries: int = 0
    env: Mapping[str, str] = field(default_factory=dict)
    declared: frozenset[Capability] = frozenset()
    approval_required: bool = False
    gate_enabled: bool = True
    approval_timeout_s: int = 3600
    remote_cwd: str | None = None
    kind: ToolKind = ToolKind.SHELL
    secret_env: Sequence[str] = ()  # names; their values are read from the environment where the call runs
    event_output_budget: int = DEFAULT_OUTPUT_BUDGET_BYTES


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    status: str
    record: ToolCallRecord
    manifest: Path


@dataclass(frozen=True)
class LocalAttachments:
    """What the CLI in *this* process hangs on an exec run: output listeners, stdin forwarding, the backend it
    resolved. Set around the ``exec-tool-call`` flow (same process); a worker running it has none."""

    listeners: Sequence[Listener] = ()
    on_session: Callable[[ExecSession], None] | None = None
    backend: tuple[ExecBackend, tuple[str, ...]] | None = None


ATTACHMENTS: ContextVar[LocalAttachments | None] = ContextVar("codex_orchestrator_exec", default=None)


def call_input(options: ExecOptions) -> CallInput:
    """The exec call by value: a one-step run."""
    workspace = options.workspace.resolve()
    cwd = options.cwd.resolve()
    if options.remote_cwd is None and not cwd.is_relative_to(workspace):
        raise RequestError(f"{cwd} is not inside the workspace {workspace}", field="--cwd")
    rel = cwd.relative_to(workspace).as_posix() if options.remote_cwd is None else "."
    secret_names = list(options.secret_env)
    step = Step(
        name=EXEC_STEP,
        kind=options.kind,
        command=list(options.argv),
        cwd=rel or ".",
        env={k: v for k, v in options.env.items() if k not in secret_names},
        capabilities=sorted(options.declared),
        approval="required" if options.approval_required else "auto",
        timeout_s=options.timeout_s,
        retry=RetrySettings(max_attempts=options.retries + 1),
    )
    ref = RunRef(
        run_id=validate_run_id(options.run_id or new_run_id()),
        task_id=validate_task_id(options.task_id),
        runs_dir=str((options.runs_dir or workspace / RUNS_DIRNAME).resolve()),
        workspace=str(workspace),
    )
    return CallInput(
        run=ref,
        call_id=call_id_for(EXEC_STEP, EXEC_STEP),
        milestone=EXEC_STEP,
        step=step,
        gate=GateSettings(
            policy=options.policy,
            profile=sorted(options.profile),
            sandbox=options.sandbox,
            enabled=options.gate_enabled,
            approval_timeout_s=options.approval_timeout_s,
        ),
        secret_env=secret_names,
        backend_cwd=options.remote_cwd,
        output_budget_bytes=options.event_output_budget,
        notifications=targets_from_env(),  # exec has no request file: CODEX_ORCHESTRATOR_NOTIFY
    )


def may_ask_up_front(call: CallInput, backend: ExecBackend | None = None) -> bool:
    """Whether the gate's first step will ask a human: the same decision ``ToolOrchestrator.run`` makes."""
    spec = call_spec(call)
    _, requirement = initial_requirement(
        call.gate.config(), spec, backend or LocalPtyBackend(), Path(call.run.workspace)
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


def request_record(call: CallInput) -> dict[str, object]:
    """What the exec run's manifest shows as its request."""
    return {
        "argv": list(call.step.command or []),
        "cwd": call.backend_cwd or call.step.cwd,
        "policy": call.gate.policy.value,
        "profile": sorted(c.value for c in call.gate.profile),
        "sandbox": call.gate.sandbox.value,
        "timeout_s": call.step.timeout_s,
        "env": dict(call.step.env),
        "secret_env": list(call.secret_env),
    }


def open_exec_run(call: CallInput) -> RunOwner:
    """Create the exec run's records; the call itself is kept in them (``stored_call``), not in Prefect."""
    return RunOwner.create(
        call.run,
        request=request_record(call),
        private=call.model_dump(mode="json"),
        mode="exec",
        gate_enabled=call.gate.enabled,
        secrets=read_secrets(call.secret_env, os.environ).values(),
        with_milestones=False,
    )


def stored_call(ref: RunRef) -> CallInput:
    """The call an exec run was opened with, from its records (a flow gets only the run's reference)."""
    return CallInput.model_validate(RunStore(ref).read_request())


def run_exec(
    call: CallInput,
    approver: Approver,
    *,
    owner: RunOwner | None = None,
    attachments: LocalAttachments | None = None,
    prefect: tuple[str, str | None] | None = None,
) -> ExecResult:
    """Run the exec run's one call through the gate (opening the run unless ``owner`` is given) and finish the
    run with the summary event last."""
    local = attachments or ATTACHMENTS.get() or LocalAttachments()
    owner = owner or open_exec_run(call)
    for listener in local.listeners:
        owner.events.add_listener(listener)
    if prefect is not None:
        owner.set_prefect(api_url=prefect[0], parent_flow_run_id=prefect[1])
    owner.start()
    try:
        with owner.tracer.span("run", **{"codex.mode": "exec"}):
            record = execute_call(
                call, approver, listeners=local.listeners, on_session=local.on_session, backend=local.backend
            )
    except KeyboardInterrupt as exc:
        owner.finish("interrupted", interrupt_exit_code(exc), error=str(exc) or "interrupted")
        raise
    except BaseException as exc:
        owner.finish("failed", EXIT_FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
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
        manifest=owner.manifest_rel,
        duration_ms=record.duration_ms or 0.0,
        error=record.error,
    )
    owner.finish(status, code, error=record.error, last=summary)  # type: ignore[arg-type]
    return ExecResult(exit_code=code, status=record.status, record=record, manifest=owner.paths.manifest)
