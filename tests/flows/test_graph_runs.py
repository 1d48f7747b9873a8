"""Runs as real Prefect DAGs on a real server: concurrent steps, stop vs continue, two approvals pending at
once, a run killed with SIGKILL and resumed, SIGTERM while paused, and the run started by the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from codex_orchestrator.exec.local import session_members
from tests.conftest import ROOT, validate_events, validate_manifest
from tests.prefect_api import read_final_task_run

pytestmark = pytest.mark.prefect
CLI = [sys.executable, "-m", "codex_orchestrator.cli"]
WAIT_S = 120.0  # only stops a broken test from hanging; never a measurement


def _write_request(workspace: Path, steps: list[dict[str, Any]], **extra: Any) -> Path:
    request = {
        "task": "graph-test",
        "workspace": str(workspace),
        "profile": ["read", "edit", "run"],
        "sandbox": "workspace-write",
        "approval_timeout_s": 600,
        "steps": steps,
        **extra,
    }
    path = workspace.parent / f"request-{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump(request))
    return path


def _start(request: Path, run_id: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "run", str(request), "--run-id", run_id, "--no-prompt"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=WAIT_S
    )


def _wait_for(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _pending(runs_dir: Path, run_id: str, env: dict[str, str], count: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        listed = _cli("approvals", run_id, "--runs-dir", str(runs_dir), "--json", env=env)
        rows = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
        ready = [r for r in rows if r.get("flow_run_id")]
        return ready if len(ready) >= count else None

    return _wait_for(check, f"{count} pending approval(s) of {run_id}")  # type: ignore[no-any-return]


def _manifest(workspace: Path, run_id: str) -> Path:
    return workspace / ".runs" / "graph-test" / "cli" / run_id / "manifest.json"


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _out, err = proc.communicate(timeout=WAIT_S)
    return proc.returncode, err


def test_steps_without_an_edge_run_at_the_same_time(prefect_server: str, workspace: Path) -> None:
    # b and c can only both succeed if they run concurrently: each waits for the other's marker.
    barrier = (
        "touch {me}.ready; i=0; "
        "while [ ! -f {other}.ready ]; do i=$((i+1)); [ $i -gt 1200 ] && exit 9; sleep 0.05; done"
    )
    steps = [
        {"name": "a", "command": "echo a"},
        {"name": "b", "command": barrier.format(me="b", other="c"), "needs": ["a"]},
        {"name": "c", "command": barrier.format(me="c", other="b"), "needs": ["a"]},
        {"name": "d", "command": "test -f b.ready && test -f c.ready", "needs": ["b", "c"]},
    ]
    env = {"PREFECT_API_URL": prefect_server}
    code, err = _finish(_start(_write_request(workspace, steps), "diamond", env))
    assert code == 0, err
    data = validate_manifest(_manifest(workspace, "diamond"))
    calls = {c["step"]: c for c in data["tool_calls"]}
    assert {s: c["status"] for s, c in calls.items()} == dict.fromkeys("abcd", "succeeded")
    assert calls["d"]["depends_on"] == ["b", "c"]
    b, c = calls["b"], calls["c"]
    assert b["started_at"] < c["finished_at"] and c["started_at"] < b["finished_at"]  # they overlapped
    assert calls["a"]["finished_at"] <= min(b["started_at"], c["started_at"])
    validate_events(_manifest(workspace, "diamond").parent / "events.jsonl")
    _check_dependencies_in_prefect(data)


def _check_dependencies_in_prefect(data: dict[str, Any]) -> None:
    """The UI draws the graph from each task run's inputs: d's must name b's and c's task runs."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    ids = {c["step"]: c["prefect_task_run_id"] for c in data["tool_calls"]}
    assert all(ids.values())
    with get_client(sync_client=True) as client:
        d = read_final_task_run(client, UUID(ids["d"]))
        upstream = {str(i.id) for inputs in d.task_inputs.values() for i in inputs if hasattr(i, "id")}
    assert {ids["b"], ids["c"]} <= upstream


@pytest.mark.parametrize("on_failure", ["stop", "continue"])
def test_stop_and_continue(prefect_server: str, workspace: Path, on_failure: str) -> None:
    steps = [
        {"name": "bad", "command": "exit 3"},
        {"name": "independent", "command": "touch independent"},
        {"name": "dependant", "command": "touch dependant", "needs": ["bad"]},
    ]
    request = _write_request(workspace, steps, max_parallel=1, on_failure=on_failure)
    run_id = f"fail-{on_failure}"
    code, err = _finish(_start(request, run_id, {"PREFECT_API_URL": prefect_server}))
    assert code == 1, err
    data = validate_manifest(_manifest(workspace, run_id))
    statuses = {c["step"]: c["status"] for c in data["tool_calls"]}
    assert statuses["bad"] == "failed" and statuses["dependant"] == "skipped"
    if on_failure == "stop":
        assert statuses["independent"] == "skipped" and not (workspace / "independent").exists()
    else:
        assert statuses["independent"] == "succeeded" and (workspace / "independent").exists()
    assert not (workspace / "dependant").exists()
    assert data["status"] == "failed" and data["milestones"][1]["status"] == "failed"


def test_two_approvals_pending_at_once_are_answered_separately(prefect_server: str, workspace: Path) -> None:
    steps = [
        {"name": "push-a", "command": "touch pushed-a", "capabilities": ["network"]},
        {"name": "push-b", "command": "touch pushed-b", "capabilities": ["network"]},
    ]
    env = {"PREFECT_API_URL": prefect_server}
    proc = _start(_write_request(workspace, steps), "two-pending", env)
    runs = workspace / ".runs"
    pending = _pending(runs, "two-pending", env, 2)
    assert len({p["flow_run_id"] for p in pending}) == 2  # each question pauses its own flow run
    ambiguous = _cli("approve", "two-pending", "--runs-dir", str(runs), env=env)
    assert ambiguous.returncode == 2 and "pick one with --approval" in ambiguous.stderr
    by_step = {p["step"]: p["approval_id"] for p in pending}
    ok = _cli("approve", "two-pending", "--approval", by_step["push-a"], "--runs-dir", str(runs), env=env)
    assert ok.returncode == 0, ok.stderr
    no = _cli(
        "approve", "two-pending", "--approval", by_step["push-b"], "--deny", "--reason", "not b",
        "--runs-dir", str(runs), env=env,
    )  # fmt: skip
    assert no.returncode == 0, no.stderr
    code, err = _finish(proc)
    assert code == 1, err
    data = validate_manifest(_manifest(workspace, "two-pending"))
    statuses = {c["step"]: c["status"] for c in data["tool_calls"]}
    assert statuses == {"push-a": "succeeded", "push-b": "denied"}
    assert (workspace / "pushed-a").exists() and not (workspace / "pushed-b").exists()
    assert {a["approval_id"]: a["outcome"] for a in data["approvals"]} == {
        by_step["push-a"]: "approved",
        by_step["push-b"]: "denied",
    }


def test_a_killed_run_resumes_without_repeating_what_succeeded(prefect_server: str, workspace: Path) -> None:
    steps = [
        {"name": "count", "command": "echo ran >> side-effects.txt"},
        {"name": "publish", "command": "touch published", "capabilities": ["network"], "needs": ["count"]},
    ]
    env = {"PREFECT_API_URL": prefect_server}
    request = _write_request(workspace, steps)
    proc = _start(request, "killed", env)
    _pending(workspace / ".runs", "killed", env, 1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=WAIT_S)
    assert (workspace / "side-effects.txt").read_text() == "ran\n"

    listed = _cli("runs", "--runs-dir", str(workspace / ".runs"), "--json", env=env)
    row = next(json.loads(line) for line in listed.stdout.splitlines() if '"killed"' in line)
    assert row["status"] in {"running", "awaiting-approval", "interrupted"}  # stale heartbeat: interrupted

    resumed = subprocess.Popen(
        [*CLI, "resume", "killed", "--runs-dir", str(workspace / ".runs"), "--no-prompt"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pending = _pending(workspace / ".runs", "killed", env, 1)
    assert pending[0]["step"] == "publish"
    assert _cli("approve", "killed", "--runs-dir", str(workspace / ".runs"), env=env).returncode == 0
    code, err = _finish(resumed)
    assert code == 0, err
    assert (workspace / "side-effects.txt").read_text() == "ran\n"  # not run again
    data = validate_manifest(_manifest(workspace, "killed"))
    assert data["status"] == "succeeded" and len(data["resumed_at"]) == 1
    publish = next(c for c in data["tool_calls"] if c["step"] == "publish")
    assert publish["status"] == "succeeded" and publish["lineage"][0]["status"] == "awaiting-approval"


def test_sigterm_while_paused_ends_the_run_interrupted(prefect_server: str, workspace: Path) -> None:
    steps = [{"name": "publish", "command": "true", "capabilities": ["network"]}]
    env = {"PREFECT_API_URL": prefect_server}
    proc = _start(_write_request(workspace, steps), "terminated", env)
    _pending(workspace / ".runs", "terminated", env, 1)
    proc.send_signal(signal.SIGTERM)
    code, err = _finish(proc)
    assert code == 143, err
    assert "Traceback" not in err
    data = validate_manifest(_manifest(workspace, "terminated"))
    assert data["status"] == "interrupted" and data["exit_code"] == 143
    assert data["pending_approvals"] == []


def test_approve_finds_the_pause_through_the_prefect_api(
    prefect_server: str, workspace: Path, tmp_path: Path
) -> None:
    """The records are not where `approve` runs (another machine, say): the Prefect API still knows the pause."""
    steps = [{"name": "publish", "command": "touch published", "capabilities": ["network"]}]
    env = {"PREFECT_API_URL": prefect_server}
    proc = _start(_write_request(workspace, steps), "remote-approve", env)
    _pending(workspace / ".runs", "remote-approve", env, 1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    answer = subprocess.run(
        [*CLI, "approve", "remote-approve"],
        cwd=elsewhere,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert answer.returncode == 0, answer.stderr
    assert "found through the Prefect API" in answer.stdout
    code, err = _finish(proc)
    assert code == 0, err
    assert (workspace / "published").exists()


def test_ctrl_c_to_the_group_on_the_embedded_server_ends_the_run_at_once(
    workspace: Path, tmp_path: Path
) -> None:
    """No PREFECT_API_URL: `run` starts its own server, and a terminal's Ctrl-C reaches both (one process group)."""
    steps = [{"name": "publish", "command": "true", "capabilities": ["network"]}]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    proc = subprocess.Popen(
        [*CLI, "run", str(_write_request(workspace, steps)), "--run-id", "ctrl-c", "--no-prompt"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, as a terminal gives it
    )
    manifest = _manifest(workspace, "ctrl-c")

    def paused() -> bool:
        return manifest.exists() and bool(json.loads(manifest.read_text()).get("pending_approvals"))

    _wait_for(paused, "the run to pause")
    os.killpg(proc.pid, signal.SIGINT)
    code, err = _finish(proc)
    assert code == 130, err
    assert "Traceback" not in err and "ConnectError" not in err
    data = validate_manifest(manifest)
    assert data["status"] == "interrupted" and data["exit_code"] == 130
    # The server got the same Ctrl-C; whether it still answered when the handler asked depends on which of
    # the two processes ran first, so either Prefect was told, or one line says it could not be (tests/flows/
    # test_interrupt.py covers the refused server; bench/interrupt.py times the whole: 8 s before, < 1 s now).
    assert err.count("Prefect's server at") <= 1, err
    # Nothing is left running: not the server, not the command's sandbox, not a watchdog.
    assert session_members(proc.pid) == {}


def test_as_many_steps_as_max_parallel_run_at_once(prefect_server: str, workspace: Path) -> None:
    # Six steps that can only all succeed if all six run at the same time: each waits for every marker.
    wait_all = (
        "touch m-{i}; n=0; while [ $(ls m-* | wc -l) -lt 6 ]; do n=$((n+1)); [ $n -gt 1200 ] && exit 9; "
        "sleep 0.05; done"
    )
    steps = [{"name": f"w{i}", "command": wait_all.format(i=i)} for i in range(6)]
    request = _write_request(workspace, steps, max_parallel=6)
    code, err = _finish(_start(request, "six-at-once", {"PREFECT_API_URL": prefect_server}))
    assert code == 0, err
    data = validate_manifest(_manifest(workspace, "six-at-once"))
    assert {c["status"] for c in data["tool_calls"]} == {"succeeded"}
