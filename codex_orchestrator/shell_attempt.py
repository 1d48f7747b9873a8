"""One attempt of a shell or agent call: where it runs (the sandbox the gate chose) and how its session goes.

The gate's step 2 picks a ``SandboxChoice``; this module turns it into a session: in the run's kept-alive
sandbox when there is one (``exec/launcher.py``: a fork instead of a fresh bwrap), in a bwrap of its own
otherwise, behind an SSH host's sandbox command, or unsandboxed; then waits, streams and sums it up as an
``AttemptResult``. A named shell (a step's ``session:``) keeps one shell per name and sandbox instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from codex_orchestrator.attempts import OUTPUT_TAIL_BYTES, AttemptResult, OutputRecorder
from codex_orchestrator.commands import spawn_env
from codex_orchestrator.exec.backend import ExecBackend, SpawnRequest
from codex_orchestrator.exec.errors import SpawnError
from codex_orchestrator.exec.guard import GuardSwitch
from codex_orchestrator.exec.launcher import POOL, SandboxLauncher
from codex_orchestrator.exec.session import ExecSession
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.sandbox import SandboxSpec, SandboxState, wrap_argv
from codex_orchestrator.toolcall import ToolCallSpec

if TYPE_CHECKING:
    from codex_orchestrator.exec.launcher import LauncherProcess
    from codex_orchestrator.gate import ToolOrchestrator

# bwrap's own message when the command cannot be executed (not found, not executable).
_BWRAP_EXEC_FAILED = b"bwrap: execvp "


@dataclass
class SandboxChoice:
    """Step 2's outcome: how the call's attempts run with respect to the sandbox."""

    state: SandboxState
    spec: SandboxSpec | None = None  # None: run unsandboxed
    prefix: tuple[str, ...] = ()  # an SSH host's own sandbox command
    detail: str | None = None
    inner: tuple[str, ...] = ()  # run inside the sandbox before the command (the read sandbox's filter)


class LaunchedBackend:
    """Runs calls in a kept-alive sandbox through its launcher; to the records it is the local backend."""

    def __init__(self, launcher: SandboxLauncher, tmp_entries: tuple[Path, ...] = ()) -> None:
        self.launcher = launcher
        self.tmp_entries = tmp_entries

    @property
    def name(self) -> str:
        return "local"

    def spawn(self, request: SpawnRequest) -> LauncherProcess:
        return self.launcher.spawn(request, self.tmp_entries)


def wrap(argv: tuple[str, ...], spec: ToolCallSpec, sandbox: SandboxChoice) -> tuple[str, ...]:
    """``argv`` as a bwrap of its own (or the host's sandbox command) runs it."""
    if sandbox.spec is not None:
        return wrap_argv((*sandbox.inner, *argv), sandbox.spec, cwd=spec.cwd)
    if sandbox.prefix:
        return (*sandbox.prefix, *argv)
    return argv


def run_shell(
    gate: ToolOrchestrator, spec: ToolCallSpec, call: ToolCallRecord, sandbox: SandboxChoice
) -> AttemptResult:
    """Run the command once in a session of its own (or the step's named shell) and sum up the attempt."""
    if spec.session is not None:
        return _in_named_session(gate, spec, call, sandbox)
    backend, argv = _where(gate, spec, call, sandbox)
    cwd = spec.backend_cwd if spec.backend_cwd is not None else str(spec.cwd)
    subscriber = OutputRecorder(gate.recorder, call.id)
    switches: list[GuardSwitch] = []

    def on_switch(session_id: str, switch: GuardSwitch) -> None:
        switches.append(switch)
        _record_guard(gate, call, switch, session_id)

    session: ExecSession = gate.sessions.open(
        backend,
        SpawnRequest(argv=argv, cwd=cwd, env=spawn_env(spec.env, spec.facts(), call.approval_source)),
        subscribers=[subscriber],
        on_guard_switch=on_switch,
    )
    if gate.on_session is not None:
        gate.on_session(session)
    try:
        exit_code = session.wait(spec.timeout_s)
        timed_out = exit_code is None
        if timed_out:
            session.close(gate.config.kill_grace_s)
            session.wait(gate.config.kill_grace_s + 1.0)
        subscriber.flush()
        latency = session.latency()
        gate.recorder.tracer.record_stream_latency(latency.p50_ms, latency.p95_ms, latency.samples)
        transcript = session.transcript
        wrapped = sandbox.spec is not None and not isinstance(backend, LaunchedBackend)
        if wrapped and exit_code == 1 and transcript.head.startswith(_BWRAP_EXEC_FAILED):
            # bwrap could not start the command: the same outcome as an unsandboxed spawn failure.
            detail = transcript.head.decode("utf-8", errors="replace").strip()
            raise SpawnError(spec.argv(), detail.removeprefix("bwrap: "))
        return AttemptResult(
            exit_code=None if timed_out else exit_code,
            timed_out=timed_out,
            output=transcript.tail_text(OUTPUT_TAIL_BYTES),
            output_bytes=transcript.total_bytes,
            omitted_bytes=transcript.omitted_bytes,
            session_id=session.id,
            guard=switches[0] if switches else None,
            mode=session.mode,
        )
    finally:
        gate.sessions.close(session.id, gate.config.kill_grace_s)


def _where(
    gate: ToolOrchestrator, spec: ToolCallSpec, call: ToolCallRecord, sandbox: SandboxChoice
) -> tuple[ExecBackend, tuple[str, ...]]:
    """The backend and argv of one attempt: the run's kept-alive sandbox when it has one for this spec.

    Only a call the gate sandboxed gets there: an escalated retry's choice has no spec, so it never does. A
    call that runs in a bwrap of its own because the kept sandbox could not start says why in its record."""
    if sandbox.spec is not None and sandbox.state is SandboxState.SANDBOXED:
        run_id, instance = gate.recorder.run_id, gate.recorder.instance
        launcher = POOL.launcher_for(run_id, instance, sandbox.spec)
        if launcher is not None:
            return LaunchedBackend(launcher, sandbox.spec.readable_paths), (*sandbox.inner, *spec.argv())
        failure = POOL.start_failure(run_id, instance, sandbox.spec)
        if failure is not None:
            call.sandbox.detail = f"a bwrap of its own: no kept-alive sandbox for this run ({failure})"
    return gate.backend, wrap(spec.argv(), spec, sandbox)


def _in_named_session(
    gate: ToolOrchestrator, spec: ToolCallSpec, call: ToolCallRecord, sandbox: SandboxChoice
) -> AttemptResult:
    """Run the command in the step's persistent shell, which keeps its cwd and environment across calls."""
    assert spec.session is not None
    # The host's /tmp entries are not part of the key: another process adding one must not cost the step its
    # shell (its cwd and environment), as it does not cost a run its kept sandbox.
    shown = replace(sandbox.spec, readable_paths=()) if sandbox.spec is not None else None
    key = (spec.session, shown, sandbox.prefix)
    session = gate.named_shells.get(key)
    if session is None or session.exit_code is not None:
        cwd = spec.backend_cwd if spec.backend_cwd is not None else str(spec.cwd)
        request = SpawnRequest(argv=wrap(("/bin/sh",), spec, sandbox), cwd=cwd, env=dict(spec.env))
        session = gate.named_shells[key] = gate.sessions.open(gate.backend, request)
    result = session.run_command(spec.display, spec.timeout_s)
    if result.timed_out or result.exit_code is None:
        # The shell is stuck in (or lost) the command: end its tree; the next call starts a fresh shell.
        gate.named_shells.pop(key, None)
        gate.sessions.close(session.id, gate.config.kill_grace_s)
    text = gate.recorder.redact(result.output.decode("utf-8", errors="replace"))
    if text:
        gate.recorder.events.emit(
            ev.Output(tool_call_id=call.id, session_id=session.id, stream="pty", chunk_seq=0, data=text)
        )
    return AttemptResult(
        exit_code=None if result.timed_out else result.exit_code,
        timed_out=result.timed_out,
        output=text[-OUTPUT_TAIL_BYTES:],
        output_bytes=len(result.output),
        session_id=session.id,
    )


def _record_guard(gate: ToolOrchestrator, call: ToolCallRecord, switch: GuardSwitch, session_id: str) -> None:
    call.guard = call.guard.model_copy(
        update={
            "mode": "buffered",
            "switched": True,
            "p50_ms": switch.p50_ms,
            "p95_ms": switch.p95_ms,
            "p99_ms": switch.p99_ms,
            "samples": switch.samples,
            "threshold_ms": switch.threshold_ms,
        }
    )
    gate.recorder.events.emit(
        ev.GuardSwitched(
            tool_call_id=call.id,
            session_id=session_id or (call.session_id or ""),
            p50_ms=switch.p50_ms,
            p95_ms=switch.p95_ms,
            p99_ms=switch.p99_ms,
            samples=switch.samples,
            threshold_ms=switch.threshold_ms,
        )
    )
