"""Deployments run by Prefect workers on a PostgreSQL-backed server, set up by the steps docs/deployments.md shows.

One module-scoped stack: a private PostgreSQL (``pg_trgm``), ``prefect server start`` on it, a process work pool,
``prefect deploy --all``, one process worker and two task workers started in a directory outside the project.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, validate_manifest
from tests.deploy.postgres import missing_reason, postgres_server
from tests.deploy.stack import Stack, free_port, readme_steps
from tests.test_cli import cli

pytestmark = [pytest.mark.postgres, pytest.mark.prefect]

RUN_WAIT_S = 240.0
RECORD_POLL_S = 0.2
TASK_WORKER_LIMIT = 2  # docs/deployments.md's `codex-orchestrator task-worker --limit 2`
FANOUT_STEPS = 2 * (TASK_WORKER_LIMIT + 2)
# The `health` deployment runs in the sample repository itself: its tests leave nothing there.
SAMPLE = ROOT / "examples/sample-repo"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    steps = readme_steps()
    assert len(steps) == 8, steps
    assert f"--limit {TASK_WORKER_LIMIT}" in steps[5]
    server, export, pool, deploy, worker, task_worker_1, task_worker_2, _run_now = steps
    home = tmp_path_factory.mktemp("deploy-home")
    elsewhere = tmp_path_factory.mktemp("not-the-project")
    with postgres_server() as pg:
        port = free_port()
        env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_DATABASE_CONNECTION_URL": pg.url,
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
            # The worker polls for scheduled runs every 10 s by default; the tests should not wait that long.
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        }
        env.pop("PREFECT_API_URL", None)
        env.pop("CODEX_ORCHESTRATOR_ROOT", None)
        stack = Stack(home=home, env=env, port=port)
        try:
            stack.run_line(server, cwd=ROOT, name="server")
            stack.wait_healthy()
            stack.run_line(export, cwd=ROOT)
            stack.run_line(pool, cwd=ROOT)
            stack.run_line(deploy, cwd=ROOT)
            stack.run_line(worker, cwd=elsewhere, name="worker")
            stack.run_line(task_worker_1, cwd=elsewhere, name="task-worker-1")
            stack.run_line(task_worker_2, cwd=elsewhere, name="task-worker-2")
            yield stack
        finally:
            stack.stop()


def _api(stack: Stack, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    response = httpx.request(method, f"{stack.api_url}{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json() if response.content else None


def _deployment(stack: Stack, name: str) -> dict[str, Any]:
    return _api(stack, "GET", f"/deployments/name/{name}")  # type: ignore[no-any-return]


def _start(stack: Stack, deployment: str, parameters: dict[str, Any]) -> str:
    dep = _deployment(stack, deployment)
    run = _api(stack, "POST", f"/deployments/{dep['id']}/create_flow_run", {"parameters": parameters})
    return str(run["id"])


def _wait_final(stack: Stack, flow_run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_WAIT_S
    while True:
        run = _api(stack, "GET", f"/flow_runs/{flow_run_id}")
        if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"flow run still {run['state']['type']}\n{stack.logs()}"
        time.sleep(RECORD_POLL_S)


def _wait_for(what: str, check: Any, stack: Stack) -> Any:
    deadline = time.monotonic() + RUN_WAIT_S
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}\n{stack.logs()}"
        time.sleep(RECORD_POLL_S)


def _calls(run_dir: Path) -> dict[str, dict[str, Any]]:
    calls = {}
    for path in (run_dir / "calls").glob("*.json"):
        try:
            record = json.loads(path.read_text())
        except (json.JSONDecodeError, FileNotFoundError):  # being replaced right now: read it next time
            continue
        calls[record["step"]] = record
    return calls


def _request(tmp_path: Path, workspace: Path, task: str, steps: str, extra: str = "") -> Path:
    request = tmp_path / f"{task}.yaml"
    request.write_text(
        f"task: {task}\nworkspace: {workspace}\nsandbox: none\nprofile: [read, edit, run]\n{extra}steps:\n{steps}"
    )
    return request


def _blocking_step(name: str, gate: Path) -> str:
    """A step that says it started, then waits for ``gate`` to exist (no sleeps decide anything)."""
    return (
        f"  - {{name: {name}, command: 'touch started-{name}; while [ ! -e {gate} ]; do sleep 0.1; done'}}\n"
    )


def test_the_readme_steps_deploy_schedules_a_worker_runs(stack: Stack) -> None:
    nightly = _deployment(stack, "autonomy/nightly-verify")
    (schedule,) = nightly["schedules"]
    assert (
        schedule["schedule"]["cron"] == "30 2 * * *" and schedule["schedule"]["timezone"] == "Europe/Berlin"
    )
    assert nightly["parameters"] == {"request_path": "examples/nightly-verify.yaml"}
    health = _deployment(stack, "autonomy/health")
    assert health["schedules"][0]["schedule"]["interval"] == 3600.0
    assert health["parameters"]["request"]["task"] == "health"
    # The run form: the request model with its real defaults.
    request_model = _deployment(stack, "autonomy/autonomy")["parameter_openapi_schema"]["definitions"][
        "RunRequest"
    ]
    assert request_model["properties"]["approval_policy"]["default"] == "on-request"
    assert request_model["properties"]["max_parallel"]["default"] == 4
    assert set(request_model["required"]) >= {"task", "workspace", "steps"}

    runs_before = set((ROOT / "examples/sample-repo/.runs/health/cli").glob("*"))
    made_dirs = [d for d in (SAMPLE / ".runs", SAMPLE / "out") if not d.exists()]
    try:
        out = stack.run_line(
            readme_steps()[-1], cwd=stack.home
        )  # prefect deployment run autonomy/health --watch
        assert "Completed" in out, out
        (run_dir,) = set((ROOT / "examples/sample-repo/.runs/health/cli").glob("*")) - runs_before
        manifest = validate_manifest(run_dir / "manifest.json")
        assert manifest["status"] == "succeeded"
        assert [c["status"] for c in manifest["tool_calls"]] == ["succeeded", "succeeded"]
    finally:
        for made in set((ROOT / "examples/sample-repo/.runs/health/cli").glob("*")) - runs_before:
            shutil.rmtree(made)
        for made_dir in made_dirs:  # the source tree as it was: other tests copy the sample repository
            shutil.rmtree(made_dir, ignore_errors=True)


def test_served_deployments_run_beside_the_work_pool_ones(stack: Stack, tmp_path: Path) -> None:
    made_dirs = [d for d in (SAMPLE / ".runs", SAMPLE / "out") if not d.exists()]
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [str(Path(os.sys.executable).parent / "codex-orchestrator"), "serve", "health", "--no-schedules"],
        cwd=tmp_path,
        env=stack.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        served = _wait_for("the served deployment", lambda: _find(stack, "autonomy/health-served"), stack)
        assert served["work_pool_name"] is None
        assert _deployment(stack, "autonomy/health")["work_pool_name"] == "codex-orchestrator"  # not replaced
        run = _wait_final(stack, _start(stack, "autonomy/health-served", {}))
        assert run["state"]["type"] == "COMPLETED", (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        os.killpg(serve.pid, 15)
        serve.wait(30)
        log.close()
        for made in (ROOT / "examples/sample-repo/.runs/health/cli").glob("*"):
            if made.is_dir() and (made / "run.json").exists():
                state = json.loads((made / "run.json").read_text())
                if state.get("prefect", {}).get("parent_flow_run_id") == run["id"]:
                    shutil.rmtree(made)
        for made_dir in made_dirs:
            shutil.rmtree(made_dir, ignore_errors=True)


def _find(stack: Stack, name: str) -> dict[str, Any] | None:
    try:
        return _deployment(stack, name)
    except httpx.HTTPStatusError:
        return None


def test_runs_of_one_task_wait_for_each_other(stack: Stack, workspace: Path, tmp_path: Path) -> None:
    gate = tmp_path / "release"
    request = _request(tmp_path, workspace, "overlap", _blocking_step("hold", gate))
    first = _start(stack, "autonomy/autonomy", {"request_path": str(request), "run_id": "overlap-1"})
    run_one = workspace / ".runs/overlap/cli/overlap-1"
    _wait_for("the first run's step", lambda: (workspace / "started-hold").exists(), stack)
    (workspace / "started-hold").unlink()
    second = _start(stack, "autonomy/autonomy", {"request_path": str(request), "run_id": "overlap-2"})

    def waiting() -> bool:
        logs = _api(stack, "POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [second]}}})
        return any("waiting for codex-task-overlap" in entry["message"] for entry in logs)

    _wait_for("the second run to wait for the task's slot", waiting, stack)
    limit = _api(stack, "GET", "/v2/concurrency_limits/codex-task-overlap")
    assert limit["limit"] == 1 and limit["active_slots"] == 1
    assert not (workspace / ".runs/overlap/cli/overlap-2").exists()  # it has not even opened its run
    gate.touch()
    assert _wait_final(stack, first)["state"]["type"] == "COMPLETED"
    assert _wait_final(stack, second)["state"]["type"] == "COMPLETED"
    one = json.loads((run_one / "manifest.json").read_text())
    two = json.loads((workspace / ".runs/overlap/cli/overlap-2/manifest.json").read_text())
    assert one["finished_at"] <= two["created_at"]  # queued, not overlapping


def test_approvals_under_a_worker_time_out_or_are_answered_by_approve(
    stack: Stack, workspace: Path, tmp_path: Path
) -> None:
    step = "  - {name: ship, command: 'echo shipped', approval: required}\n"
    timing_out = _request(tmp_path, workspace, "unanswered", step, "approval_timeout_s: 2\n")
    answered = _request(tmp_path, workspace, "answered", step)
    left = _start(stack, "autonomy/autonomy", {"request_path": str(timing_out), "run_id": "unanswered-1"})
    asked = _start(stack, "autonomy/autonomy", {"request_path": str(answered), "run_id": "answered-1"})

    def paused() -> bool:
        runs = _api(
            stack,
            "POST",
            "/flow_runs/filter",
            {
                "flow_runs": {
                    "tags": {"all_": ["codex-run:answered-1"]},
                    "state": {"type": {"any_": ["PAUSED"]}},
                }
            },
        )
        return bool(runs)

    _wait_for("the approval to pause", paused, stack)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = cli(
        "approve", "answered-1", "--reason", "ok", env={"PREFECT_API_URL": stack.api_url}, cwd=elsewhere
    )
    assert done.returncode == 0, done.stderr
    assert _wait_final(stack, asked)["state"]["type"] == "COMPLETED"
    assert _wait_final(stack, left)["state"]["type"] == "FAILED"
    yes = validate_manifest(workspace / ".runs/answered/cli/answered-1/manifest.json")
    no = validate_manifest(workspace / ".runs/unanswered/cli/unanswered-1/manifest.json")
    assert yes["tool_calls"][0]["status"] == "succeeded"
    assert yes["approvals"][0]["answered_by"] == "cli"
    assert no["tool_calls"][0]["status"] == "denied"
    assert no["approvals"][0]["answered_by"] == "timeout"


def test_the_exec_tool_call_deployment_runs_on_the_worker(stack: Stack, workspace: Path) -> None:
    run = {
        "run_id": "exec-dep-1",
        "task_id": "exec",
        "runs_dir": str(workspace / ".runs"),
        "workspace": str(workspace),
    }
    call = {
        "run": run,
        "call_id": "tc-probe",
        "milestone": "exec",
        "step": {"name": "probe", "command": "echo from-a-worker > probe.txt"},
        "gate": {"profile": ["read", "edit", "run"], "sandbox": "none"},
    }
    flow_run = _start(stack, "exec-tool-call/exec-tool-call", {"call": call})
    assert _wait_final(stack, flow_run)["state"]["type"] == "COMPLETED", stack.logs()
    assert (workspace / "probe.txt").read_text() == "from-a-worker\n"
    manifest = validate_manifest(workspace / ".runs/exec/cli/exec-dep-1/manifest.json")
    assert manifest["status"] == "succeeded" and manifest["tool_calls"][0]["status"] == "succeeded"


def test_a_fanned_out_run_lands_on_both_task_workers_and_survives_losing_one(
    stack: Stack, workspace: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "release"
    # A task worker holds at most limit + 2 runs (limit running, one waiting for a slot, one unread on its
    # socket): with more steps than that, both workers must take some.
    steps = "".join(_blocking_step(f"part{i}", gate) for i in range(FANOUT_STEPS))
    request = _request(
        tmp_path,
        workspace,
        "fanout",
        steps,
        f"runner: {{kind: task-workers}}\nmax_parallel: {FANOUT_STEPS}\n",
    )
    flow_run = _start(stack, "autonomy/autonomy", {"request_path": str(request), "run_id": "fanout-1"})
    run_dir = workspace / ".runs/fanout/cli/fanout-1"
    here = socket.gethostname()
    workers = {
        name: f"{here}:{p.pid}" for name, p in stack.processes.items() if name.startswith("task-worker")
    }

    def on_both() -> dict[str, str] | None:
        running = {c["host"]: step for step, c in _calls(run_dir).items() if c["status"] == "running"}
        return running if set(workers.values()) <= set(running) else None

    _wait_for("calls running on both task workers", on_both, stack)
    stack.kill("task-worker-1")
    gate.touch()
    assert _wait_final(stack, flow_run)["state"]["type"] == "COMPLETED", stack.logs()

    calls = _calls(run_dir)
    assert sorted(calls) == [f"part{i}" for i in range(FANOUT_STEPS)]
    assert {c["status"] for c in calls.values()} == {"succeeded"}
    assert {c["host"] for c in calls.values()} == {workers["task-worker-2"]}  # the survivor finished them all
    rerun = [c for c in calls.values() if c["lineage"]]
    assert rerun and all(c["lineage"][-1]["host"] == workers["task-worker-1"] for c in rerun)
    # Nothing ran twice: each step's command started once per worker that took it.
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    started = [e for e in events if e["type"] == "tool_call.started"]
    assert len(started) == FANOUT_STEPS + len(rerun)
    rebuilt = cli("manifest", "--rebuild", "fanout-1", "--runs-dir", str(workspace / ".runs"))
    assert rebuilt.returncode == 0, rebuilt.stderr
    manifest = validate_manifest(run_dir / "manifest.json")
    assert [c["step"] for c in manifest["tool_calls"]] == sorted(calls, key=lambda s: calls[s]["order"])
    assert manifest["status"] == "succeeded"
