"""agents/codex.py without Prefect: the real codex binary against the scripted model, in the real sandbox, each
of its tool calls decided by the gate (approver: nobody, so whatever needs a person is denied)."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from codex_orchestrator.agents import codex as driver
from codex_orchestrator.agents.scripted_model import ScriptedModel
from codex_orchestrator.approvals import NoApprover
from codex_orchestrator.execute import execute_call
from codex_orchestrator.policy import ApprovalPolicy, Capability
from tests.agents.helpers import (
    CALC,
    MUL_PATCH,
    agent_call_input,
    new_workspace,
    read_run,
    run_agent,
)

pytestmark = pytest.mark.sandbox


def test_reads_and_a_patch_run_unasked_within_the_profile(tmp_path: Path) -> None:
    run, model = run_agent(
        tmp_path, [[{"exec": "cat calc.py"}], [{"patch": MUL_PATCH}], [{"message": "added mul"}]]
    )
    assert run.record.status == "succeeded", run.record.error
    assert [(c["kind"], c["command"], c["status"]) for c in run.calls] == [
        ("shell", "cat calc.py", "succeeded"),
        ("edit", "apply patch: calc.py", "succeeded"),
    ]
    assert all(c["approval_source"] == "not-required" for c in run.calls)
    assert "def add" in run.calls[0]["output_tail"] and run.calls[0]["exit_code"] == 0
    assert "def mul(a, b):" in (run.workspace / "calc.py").read_text()
    # codex sent the command's real output back to the model
    assert "return a + b" in model.function_call_outputs()["call_0_0"]
    # ids are deterministic: the step's id, the item, a digest of thread/turn/item
    assert all(c["id"].startswith("exec.implement.call-") for c in run.calls)
    kinds = [e["type"] for e in run.events]
    assert kinds.count("tool_call.started") == 3 and kinds.count("tool_call.finished") == 3


def test_a_call_the_policy_forbids_is_declined_and_the_agent_goes_on(tmp_path: Path) -> None:
    # policy never, profile read: the patch needs edit → forbidden; codex tells the model, which answers.
    run, model = run_agent(
        tmp_path,
        [[{"patch": MUL_PATCH}], [{"exec": "cat calc.py"}], [{"message": "could not patch"}]],
        policy=ApprovalPolicy.NEVER,
        profile=(Capability.READ,),
    )
    assert run.record.status == "succeeded", run.record.error
    patch, read = run.calls
    assert patch["status"] == "denied" and patch["approval_source"] == "policy"
    assert "needs edit beyond the profile" in patch["error"]
    assert read["status"] == "succeeded"
    assert (run.workspace / "calc.py").read_text() == CALC
    assert "rejected" in model.function_call_outputs()["call_0_0"].lower()


def test_nothing_escapes_the_workspace(tmp_path: Path) -> None:
    marker = f"/tmp/agent-escape-{uuid.uuid4().hex[:8]}"
    outside_patch = "*** Begin Patch\n*** Add File: ../outside.py\n+x = 1\n*** End Patch"
    run, _ = run_agent(
        tmp_path,
        [
            [{"exec": "echo x > ../outside.txt"}],
            [{"exec": f"echo x > {marker}"}],
            [{"patch": outside_patch}],
            [{"message": "done"}],
        ],
    )
    parent_write, tmp_write, patch = run.calls
    assert parent_write["status"] == "failed" and "Read-only file system" in parent_write["output_tail"]
    assert not (tmp_path / "outside.txt").exists()
    assert tmp_write["status"] == "succeeded"  # into the sandbox's private /tmp...
    assert not Path(marker).exists()  # ...never the host's
    assert patch["status"] == "denied" and "outside the workspace" in patch["error"]
    assert not (tmp_path / "outside.py").exists()


def test_no_network_unless_granted(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    probe = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}))\""
    try:
        run, _ = run_agent(
            tmp_path,
            [[{"exec": probe}], [{"exec": f"curl -s http://127.0.0.1:{port}/"}], [{"message": "offline"}]],
        )
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing reached the host's listener
    finally:
        listener.close()
    unclassified, curl = run.calls
    assert unclassified["status"] == "failed" and "Connection refused" in unclassified["output_tail"]
    assert curl["status"] == "denied" and "needs network" in curl["error"]
    assert run.record.status == "succeeded"


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        ("http500", "HTTP 500"),
        ("malformed", "malformed or dropped response stream"),
        ("drop", "malformed or dropped response stream"),
    ],
)
def test_a_failing_model_endpoint_fails_the_step_naming_it(tmp_path: Path, fault: str, cause: str) -> None:
    run, _ = run_agent(tmp_path, [[{"exec": "true"}], {"fault": fault}])
    assert run.record.status == "failed"
    assert run.record.error is not None and "\n" not in run.record.error
    assert run.record.error.startswith(f"codex: the model endpoint failed: {cause}")
    assert run.calls[0]["status"] == "succeeded"  # what happened before is kept


def test_missing_codex_fails_the_step_in_one_line(tmp_path: Path) -> None:
    run, _ = run_agent(tmp_path, [[{"message": "never"}]], codex_bin=str(tmp_path / "no-codex"))
    assert run.record.status == "failed"
    assert run.record.error == f"codex binary {tmp_path / 'no-codex'} is missing or not executable"


def test_a_binary_without_the_protocol_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "old-codex"
    old.write_text("#!/bin/sh\necho 'error: unrecognized subcommand app-server' >&2\nexit 2\n")
    old.chmod(0o755)
    run, _ = run_agent(tmp_path, [[{"message": "never"}]], codex_bin=str(old))
    assert run.record.status == "failed"
    assert run.record.error == (
        f"codex binary {old} has no usable `app-server generate-json-schema` "
        "(error: unrecognized subcommand app-server)"
    )


def _when_running(ref_dir: Path, command: str, action: Any) -> threading.Thread:
    """Call ``action()`` once the agent's call of ``command`` is running (its record says so)."""

    def watch() -> None:
        import json

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for path in ref_dir.glob("calls/*.json"):
                try:
                    data = json.loads(path.read_text())
                except ValueError:
                    continue
                if data.get("command") == command and data.get("status") == "running":
                    action()
                    return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _live_pids() -> list[int]:
    return [d.client.pid for d in list(driver._LIVE) if d.client is not None and d.client.pid is not None]


def test_codex_crashing_fails_the_step_with_its_stderr(tmp_path: Path) -> None:
    workspace, ref = new_workspace(tmp_path)
    run_dir = Path(ref.runs_dir) / ref.task_id / "cli" / ref.run_id
    _when_running(run_dir, "sleep 30", lambda: [os.kill(pid, 9) for pid in _live_pids()])
    run, _ = run_agent(tmp_path, [[{"exec": "sleep 30"}], [{"message": "never"}]], workspace=(workspace, ref))
    assert run.record.status == "failed"
    assert run.record.error is not None and run.record.error.startswith("codex crashed (exit code -9)")
    assert run.calls[0]["status"] == "failed"  # the running call ended with it


def test_an_interrupt_ends_the_turn_and_resume_continues_the_thread(tmp_path: Path) -> None:
    workspace, ref = new_workspace(tmp_path)
    run_dir = Path(ref.runs_dir) / ref.task_id / "cli" / ref.run_id
    script = [[{"exec": "echo once >> log.txt"}], [{"exec": "sleep 30"}], [{"message": "resumed and done"}]]
    with ScriptedModel(script) as model:
        call = agent_call_input(ref, model)
        watcher = _when_running(run_dir, "sleep 30", lambda: driver.interrupt_every_agent("SIGINT"))
        first = execute_call(call, NoApprover("nobody"))
        watcher.join()
        assert first.status == "failed" and first.error == "codex: turn interrupted (SIGINT)"
        assert not _live_pids()
        second = execute_call(call, NoApprover("nobody"))
    run = read_run(workspace, ref, second)
    assert second.status == "succeeded", second.error
    assert (workspace / "log.txt").read_text() == "once\n"  # the finished call was not run again
    started = [e for e in run.events if e["type"] == "agent.started"]
    assert [e["resumed"] for e in started] == [False, True]
    assert started[0]["thread_id"] == started[1]["thread_id"]
    assert [c["status"] for c in run.calls] == ["succeeded", "failed"]


def test_the_steps_timeout_interrupts_the_turn(tmp_path: Path) -> None:
    run, _ = run_agent(tmp_path, [[{"exec": "sleep 60"}], [{"message": "never"}]], timeout_s=3)
    assert run.record.status == "timed-out"
    assert run.record.error == "codex: turn interrupted (the step's timeout of 3 s)"
    assert not _live_pids()


def test_the_model_key_travels_by_name_and_never_lands_in_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-" + uuid.uuid4().hex
    monkeypatch.setenv("MODEL_KEY", secret)
    run, model = run_agent(
        tmp_path,
        [[{"exec": f"echo key=$MODEL_KEY; echo {secret}"}], [{"message": f"the key is {secret}"}]],
        secret_env=["MODEL_KEY"],
        codex_config={"model_providers.scripted.env_key": "MODEL_KEY"},
    )
    assert run.record.status == "succeeded", run.record.error
    headers = {k.lower(): v for k, v in model.headers[0].items()}
    assert headers.get("authorization") == f"Bearer {secret}", sorted(headers)  # codex had it
    assert "key=\n" in run.calls[0]["output_tail"]  # the agent's commands do not
    for path in Path(run.ref.runs_dir).rglob("*"):
        if path.is_file() and "home" not in path.relative_to(run.ref.runs_dir).parts:
            assert secret not in path.read_text(errors="replace"), path
