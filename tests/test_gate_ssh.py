"""The gate over a real SSH host: a dropped connection is a typed, retryable error the retry policy recovers from."""

from __future__ import annotations

from pathlib import Path

from codex_orchestrator.exec.ssh import SshBackend
from codex_orchestrator.policy import ToolKind
from codex_orchestrator.records import events as ev
from codex_orchestrator.retry import RetryPolicy
from codex_orchestrator.toolcall import ToolCallSpec
from tests.exec.sshd import running_sshd
from tests.test_gate import ScriptedApprover, finish, make_gate


def test_dropped_connection_is_retried_on_a_fresh_connection(workspace: Path, tmp_path: Path) -> None:
    with running_sshd(tmp_path / "sshd") as server:
        backend = SshBackend(server.target())
        gate = make_gate(workspace, ScriptedApprover())
        gate.backend = backend
        dropped: list[bool] = []

        def drop_once(event: ev._Event, _line: str) -> None:
            # The first time the remote command speaks, the host vanishes and comes back.
            if isinstance(event, ev.Output) and "started" in event.data and not dropped:
                dropped.append(True)
                server.restart()

        gate.recorder.events.add_listener(drop_once)
        spec = ToolCallSpec(
            step="remote",
            milestone="exec",
            kind=ToolKind.SHELL,
            cwd=workspace,
            command="echo started; sleep 1; echo finished",
            retry=RetryPolicy(max_attempts=3, base_delay_s=0.1),
        )
        call = gate.run(spec)
        assert dropped == [True]
        assert call.status == "succeeded", call.error
        assert len(call.attempts) == 2
        assert "ConnectionLost" not in (call.error or "")
        assert "lost" in (call.attempts[0].error or "").lower()
        assert call.attempts[0].retry_delay_s is not None
        assert call.backend.startswith("ssh://") and call.sandbox.state == "none"
        assert "finished" in call.output_tail
        finish(gate)
        backend.close()
