"""The ToolOrchestrator gate end to end on real PTYs and real bubblewrap: approval → sandbox → attempt → retry.

Approvals are answered by ``ScriptedApprover``, the gate's approver seam (the Prefect pause behind the same seam
is exercised against a real server in tests/flows/).
"""

from __future__ import annotations

import subprocess
import uuid
from collections import deque
from dataclasses import replace
from pathlib import Path

import pytest

from codex_orchestrator.approvals import Announce, ApprovalAnswer, ApprovalRequest, Decision
from codex_orchestrator.call_recorder import CallRecorder
from codex_orchestrator.fetch import FetchPolicy
from codex_orchestrator.gate import GateConfig, ToolOrchestrator
from codex_orchestrator.policy import ApprovalPolicy, Capability, ToolKind
from codex_orchestrator.records.events import read_events
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.retry import RetryPolicy
from codex_orchestrator.run import RunOwner
from codex_orchestrator.sandbox import SandboxMode
from codex_orchestrator.toolcall import ToolCallSpec, call_id_for
from tests.conftest import validate_events, validate_manifest

R, E, X, N = Capability.READ, Capability.EDIT, Capability.RUN, Capability.NETWORK


class ScriptedApprover:
    def __init__(self, *answers: Decision) -> None:
        self.answers = deque(answers)
        self.asked: list[ApprovalRequest] = []

    def ask(self, request: ApprovalRequest, announce: Announce) -> ApprovalAnswer:
        announce(None)
        self.asked.append(request)
        decision = self.answers.popleft()
        return ApprovalAnswer(
            decision, reason="scripted" if decision is Decision.DENY else None, answered_by="sdk"
        )


def make_gate(
    workspace: Path,
    approver: ScriptedApprover,
    *,
    policy: ApprovalPolicy = ApprovalPolicy.ON_REQUEST,
    profile: frozenset[Capability] = frozenset({R, E, X}),
    sandbox: SandboxMode = SandboxMode.WORKSPACE_WRITE,
    enabled: bool = True,
    secrets: list[str] | None = None,
) -> ToolOrchestrator:
    ref = RunRef(
        run_id=f"run-{uuid.uuid4().hex[:8]}",
        task_id="gate-test",
        runs_dir=str(workspace / ".runs"),
        workspace=str(workspace),
    )
    owner = RunOwner.create(ref, request={}, secrets=secrets or [], with_milestones=False)
    owner.start()
    recorder = CallRecorder(owner.store, events=owner.events, tracer=owner.tracer, redact=owner.redact)
    gate = ToolOrchestrator(
        recorder=recorder,
        config=GateConfig(policy=policy, profile=profile, sandbox=sandbox, enabled=enabled),
        approver=approver,
        sleep=lambda _s: None,
    )
    _OWNERS[id(gate)] = owner
    return gate


_OWNERS: dict[int, RunOwner] = {}


def shell(workspace: Path, command: str, **kw: object) -> ToolCallSpec:
    return ToolCallSpec(
        step=str(kw.pop("step", "s")),
        milestone="exec",
        kind=ToolKind.SHELL,
        cwd=workspace,
        command=command,
        **kw,
    )  # type: ignore[arg-type]


def finish(gate: ToolOrchestrator) -> dict[str, object]:
    _OWNERS.pop(id(gate)).finish("succeeded", 0)
    gate.sessions.close_all()
    validate_events(gate.recorder.paths.events)
    return validate_manifest(gate.recorder.paths.manifest)


def test_read_only_call_runs_unasked_in_a_pty_and_streams(workspace: Path) -> None:
    approver = ScriptedApprover()
    gate = make_gate(workspace, approver)
    call = gate.run(shell(workspace, "test -t 1 && echo tty-yes; ls"))
    assert call.status == "succeeded" and call.exit_code == 0
    assert call.approval_source == "not-required" and approver.asked == []
    assert call.sandbox.state == "sandboxed"
    assert "tty-yes" in call.output_tail and "calc.py" in call.output_tail
    finish(gate)
    output = "".join(e["data"] for e in read_events(gate.recorder.paths.events) if e["type"] == "output")
    assert "tty-yes" in output


def test_never_forbids_without_asking(workspace: Path) -> None:
    approver = ScriptedApprover()
    gate = make_gate(workspace, approver, policy=ApprovalPolicy.NEVER, profile=frozenset({R}))
    call = gate.run(shell(workspace, "touch new-file"))
    assert call.status == "denied" and call.approval_source == "policy" and call.attempts == []
    assert approver.asked == []
    assert not (workspace / "new-file").exists()
    finish(gate)


def test_ask_then_deny_records_the_human_and_reason(workspace: Path) -> None:
    approver = ScriptedApprover(Decision.DENY)
    gate = make_gate(workspace, approver, profile=frozenset({R}))
    call = gate.run(shell(workspace, "touch new-file"))
    assert call.status == "denied" and call.approval_source == "human"
    assert approver.asked[0].needs == ("edit",)
    assert "scripted" in (call.error or "")
    assert not (workspace / "new-file").exists()
    data = finish(gate)
    assert data["approvals"][0]["outcome"] == "denied"  # type: ignore[index]


def test_session_approval_is_cached_and_counted(workspace: Path) -> None:
    approver = ScriptedApprover(Decision.APPROVE_FOR_SESSION, Decision.DENY)
    gate = make_gate(workspace, approver, profile=frozenset({R}))
    first = gate.run(shell(workspace, "touch cached-file"))
    second = gate.run(shell(workspace, "touch cached-file", step="again"))
    third = gate.run(shell(workspace, "touch other-file", step="other"))  # different key: asks again
    assert [first.approval_source, second.approval_source] == ["human", "cache"]
    assert third.status == "denied" and len(approver.asked) == 2
    data = finish(gate)
    assert data["approval_cache"] == {"hits": 1, "misses": 2}


def test_retryable_exit_code_backs_off_and_retries(workspace: Path) -> None:
    gate = make_gate(workspace, ScriptedApprover())
    marker = workspace / ".flaky"
    command = f"if [ -f {marker.name} ]; then echo ok; else touch {marker.name}; exit 75; fi"
    retry = RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=1.0, jitter=0.5)
    call = gate.run(shell(workspace, command, retry=retry))
    assert call.status == "succeeded" and len(call.attempts) == 2
    delay = call.attempts[0].retry_delay_s
    assert delay is not None and 0.25 <= delay <= 0.75
    assert call.attempts[1].retry_delay_s is None
    finish(gate)


def test_non_retryable_failure_and_exhausted_retries(workspace: Path) -> None:
    gate = make_gate(workspace, ScriptedApprover())
    failed = gate.run(shell(workspace, "exit 3", retry=RetryPolicy(max_attempts=5)))
    assert failed.status == "failed" and failed.exit_code == 3 and len(failed.attempts) == 1
    exhausted = gate.run(shell(workspace, "exit 75", step="tempfail", retry=RetryPolicy(max_attempts=3)))
    assert exhausted.status == "failed" and len(exhausted.attempts) == 3
    assert "gave up after 3 attempts" in (exhausted.error or "")
    finish(gate)


def test_timeout_kills_the_whole_tree(workspace: Path) -> None:
    gate = make_gate(workspace, ScriptedApprover(), sandbox=SandboxMode.NONE)
    marker = f"co-timeout-{uuid.uuid4().hex}"
    call = gate.run(shell(workspace, f"sh -c 'sleep 300; : {marker}' & sleep 300; : {marker}", timeout_s=0.5))
    assert call.status == "timed-out" and call.exit_code is None
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout.strip() == "", f"processes survived the timeout: {left.stdout}"
    finish(gate)


def test_sandbox_denial_escalates_to_a_fresh_approval(workspace: Path) -> None:
    outside = Path("/var/tmp") / f"co-escalate-{uuid.uuid4().hex}"
    try:
        # approve-for-session must not cover the escalation: it asks again every time
        approver = ScriptedApprover(Decision.APPROVE)
        gate = make_gate(workspace, approver)
        call = gate.run(shell(workspace, f"touch {outside}"))
        assert call.status == "succeeded" and outside.exists()
        assert call.sandbox.state == "escalated" and call.sandbox.denial == "write"
        assert [a.sandboxed for a in call.attempts] == [True, False]
        assert approver.asked[0].purpose == "escalation"
        denied_gate = make_gate(workspace, ScriptedApprover(Decision.DENY))
        outside.unlink()
        refused = denied_gate.run(shell(workspace, f"touch {outside}"))
        assert refused.status == "failed" and refused.sandbox.state == "denied" and not outside.exists()
        finish(gate)
        finish(denied_gate)
    finally:
        outside.unlink(missing_ok=True)


def test_sandbox_blocks_network_unless_granted(workspace: Path) -> None:
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    probe = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2); print('connected')\""
    try:
        blocked = make_gate(workspace, ScriptedApprover(Decision.DENY)).run(shell(workspace, probe))
        assert blocked.status == "failed" and blocked.sandbox.denial == "network"
        granted_gate = make_gate(workspace, ScriptedApprover(), profile=frozenset({R, E, X, N}))
        granted = granted_gate.run(shell(workspace, probe, declared=frozenset({N})))
        assert granted.status == "succeeded" and "connected" in granted.output_tail
        assert granted.sandbox.state == "sandboxed"
    finally:
        server.close()


def test_feature_flag_off_runs_directly_as_not_required(workspace: Path) -> None:
    approver = ScriptedApprover()
    gate = make_gate(workspace, approver, policy=ApprovalPolicy.NEVER, profile=frozenset({R}), enabled=False)
    call = gate.run(shell(workspace, "touch flagged-off"))
    assert call.status == "succeeded" and call.approval_source == "not-required"
    assert call.sandbox.state == "none" and (workspace / "flagged-off").exists()
    finish(gate)


def test_edit_step_and_secret_redaction(workspace: Path) -> None:
    gate = make_gate(workspace, ScriptedApprover(), secrets=["hunter2-secret"])
    edit = ToolCallSpec(
        step="e",
        milestone="exec",
        kind=ToolKind.EDIT,
        cwd=workspace,
        path=workspace / "notes.md",
        content="hello\n",
    )
    assert gate.run(edit).status == "succeeded"
    assert (workspace / "notes.md").read_text() == "hello\n"
    call = gate.run(shell(workspace, "echo token=hunter2-secret", env={"TOKEN": "hunter2-secret"}))
    assert "token=***" in call.output_tail
    finish(gate)
    for path in gate.recorder.paths.run_dir.rglob("*"):
        if path.is_file():
            assert "hunter2-secret" not in path.read_text(), path.name


@pytest.mark.parametrize("policy", list(ApprovalPolicy))
def test_untrusted_asks_for_anything_not_read_only(workspace: Path, policy: ApprovalPolicy) -> None:
    approver = ScriptedApprover(Decision.APPROVE)
    gate = make_gate(workspace, approver, policy=policy)
    call = gate.run(shell(workspace, "python3 -c 'print(1)'"))
    assert call.status == "succeeded"
    assert (len(approver.asked) == 1) == (policy is ApprovalPolicy.UNTRUSTED)
    finish(gate)


def test_on_failure_runs_confined_calls_sandboxed_and_escalates_only_on_denial(workspace: Path) -> None:
    outside = Path("/var/tmp") / f"co-onfailure-{uuid.uuid4().hex}"
    try:
        approver = ScriptedApprover(Decision.APPROVE, Decision.DENY)
        gate = make_gate(workspace, approver, policy=ApprovalPolicy.ON_FAILURE, profile=frozenset({R, X}))
        # needs edit beyond the profile: runs unasked in a read-only sandbox, is denied, then escalates
        call = gate.run(shell(workspace, f"touch {outside}"))
        assert call.approval_source == "human" and call.sandbox.state == "escalated"
        assert [a.sandboxed for a in call.attempts] == [True, False] and outside.exists()
        assert [r.purpose for r in approver.asked] == ["escalation"]
        # without `edit` even the workspace is read-only for this call
        inside = gate.run(shell(workspace, "touch inside-file", step="inside"))
        assert inside.sandbox.mode == "read-only" and inside.sandbox.state == "denied"
        assert inside.status == "failed" and not (workspace / "inside-file").exists()
        finish(gate)
    finally:
        outside.unlink(missing_ok=True)


def test_named_session_keeps_cwd_and_env_across_tool_calls(workspace: Path) -> None:
    gate = make_gate(workspace, ScriptedApprover())
    first = gate.run(shell(workspace, "cd tests && export GREETING=hello", session="dev"))
    second = gate.run(
        shell(workspace, 'echo "$GREETING from $(basename "$PWD")"', step="again", session="dev")
    )
    assert first.status == second.status == "succeeded"
    assert first.session_id == second.session_id
    assert "hello from tests" in second.output_tail
    failing = gate.run(shell(workspace, "false", step="fails", session="dev"))
    assert failing.status == "failed" and failing.exit_code == 1
    finish(gate)


def test_guard_switch_is_recorded_in_events_and_manifest(workspace: Path) -> None:
    import time as _time

    from codex_orchestrator.exec.guard import GuardConfig
    from codex_orchestrator.exec.session import ExecSessionManager

    gate = make_gate(workspace, ScriptedApprover())
    gate.sessions = ExecSessionManager(guard=GuardConfig(p95_threshold_ms=1.0, min_samples=4))
    slow = gate.recorder.events.add_listener
    slow(lambda event, _line: _time.sleep(0.005) if event.type == "output" else None)  # type: ignore[attr-defined]
    call = gate.run(shell(workspace, "for i in $(seq 1 60); do echo line $i; sleep 0.002; done"))
    assert call.status == "succeeded"
    assert call.guard.switched and call.guard.mode == "buffered"
    assert call.guard.p95_ms is not None and call.guard.p95_ms > 1.0
    finish(gate)
    events = read_events(gate.recorder.paths.events)
    assert [e for e in events if e["type"] == "guard.switched"]
    text = "".join(e["data"] for e in events if e["type"] == "output")
    assert "line 1\r\n" in text and "line 60" in text


def test_unavailable_sandbox_follows_the_policy(workspace: Path, tmp_path: Path) -> None:
    broken = tmp_path / "fake-bwrap"
    broken.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    broken.chmod(0o755)
    refused_gate = make_gate(workspace, ScriptedApprover(), policy=ApprovalPolicy.NEVER)
    refused_gate.config = replace(refused_gate.config, bwrap_path=str(broken))
    refused = refused_gate.run(shell(workspace, "ls"))
    assert refused.status == "denied" and refused.sandbox.state == "denied"
    assert "namespace" in (refused.sandbox.detail or "")
    approver = ScriptedApprover(Decision.APPROVE)
    asked_gate = make_gate(workspace, approver)
    asked_gate.config = replace(asked_gate.config, bwrap_path=str(broken))
    ran = asked_gate.run(shell(workspace, "ls"))
    assert ran.status == "succeeded" and ran.sandbox.state == "unavailable"
    assert approver.asked[0].purpose == "escalation" and "unavailable" in approver.asked[0].reason
    finish(refused_gate)
    finish(asked_gate)


def test_fetch_needs_network_and_saves_the_body(workspace: Path) -> None:
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"fetched-body\n"
            self.send_response(200 if self.path == "/ok" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        approver = ScriptedApprover(Decision.APPROVE_FOR_SESSION, Decision.APPROVE)
        gate = make_gate(workspace, approver)
        fetch = ToolCallSpec(
            step="f",
            milestone="exec",
            kind=ToolKind.FETCH,
            cwd=workspace,
            url=f"{base}/ok",
            path=workspace / "downloads" / "body.txt",
            fetch_policy=FetchPolicy(allow_hosts=frozenset({"127.0.0.1"})),  # loopback only when allowed
        )
        call = gate.run(fetch)
        assert call.status == "succeeded" and call.needs == ["edit", "network", "read"], call.output_tail
        assert call.final_url == f"{base}/ok"
        assert approver.asked[0].needs == ("network",)
        assert (workspace / "downloads" / "body.txt").read_text() == "fetched-body\n"
        missing = gate.run(replace(fetch, step="missing", url=f"{base}/missing", path=None))
        assert missing.status == "failed" and "HTTP 404" in missing.output_tail
        assert missing.approval_source == "human"  # a different URL is a different approval
        finish(gate)
    finally:
        server.shutdown()
        server.server_close()


def test_every_approval_ends_in_one_resolved_event(workspace: Path) -> None:
    outside = Path("/var/tmp") / f"co-events-{uuid.uuid4().hex}"
    try:
        approver = ScriptedApprover(Decision.APPROVE, Decision.DENY)
        gate = make_gate(workspace, approver, profile=frozenset({R, X}))
        gate.run(shell(workspace, f"touch {outside}"))  # capability ask (approved), then escalation (denied)
        finish(gate)
        events = read_events(gate.recorder.paths.events)
        asked = [e["approval_id"] for e in events if e["type"] == "approval.requested"]
        resolved = [e for e in events if e["type"] == "approval.resolved"]
        call_id = call_id_for("exec", "s")
        assert asked == [f"{call_id}.ap1", f"{call_id}.ap2"]  # deterministic: the n-th question of the call
        assert [(e["approval_id"], e["outcome"], e["source"]) for e in resolved] == [
            (f"{call_id}.ap1", "approved", "human"),
            (f"{call_id}.ap2", "denied", "human"),
        ]
    finally:
        outside.unlink(missing_ok=True)


def test_nobody_to_ask_is_a_policy_denial(workspace: Path) -> None:
    from codex_orchestrator.approvals import NoApprover

    gate = make_gate(workspace, ScriptedApprover(), profile=frozenset({R}))
    gate.approver = NoApprover("no approver attached")
    call = gate.run(shell(workspace, "touch f"))
    assert call.status == "denied" and call.approval_source == "policy"
    data = finish(gate)
    assert data["approvals"][0]["source"] == "policy"  # type: ignore[index]


def test_a_missing_program_cannot_start_in_or_out_of_the_sandbox(workspace: Path) -> None:
    for sandbox in (SandboxMode.WORKSPACE_WRITE, SandboxMode.NONE):
        gate = make_gate(workspace, ScriptedApprover(), sandbox=sandbox)
        argv = ("no-such-program-xyz",)
        call = gate.run(
            ToolCallSpec(step="s", milestone="exec", kind=ToolKind.SHELL, cwd=workspace, command=argv)
        )
        assert call.status == "failed" and call.exit_code is None, sandbox
        assert "cannot start" in (call.error or "") and len(call.attempts) == 1, call.error
        finish(gate)
