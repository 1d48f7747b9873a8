"""The benchmark scripts run end to end at ``--quick`` size: exit 0, print their tables and a JSON summary line.

No figure is asserted: a quick run on a shared two-core machine measures nothing but that the scripts work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_orchestrator.exec.local import session_members
from tests.conftest import ROOT

# Generous: only stops a broken script from hanging the suite (a quick run takes seconds plus server start).
BENCH_TIMEOUT_S = 240.0
TARGET_KEYS = {"ratio", "target", "met"}


def run_quick(script: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """Run ``bench/<script> --quick`` as `make bench` does; returns stdout and the final JSON line, decoded."""
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)  # the gate benchmark runs on its own ephemeral server
    # A session of its own, so a timeout can end the script with its sshd or Prefect server, and so we can
    # check afterwards that nothing it started is left behind.
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / script), "--quick"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=BENCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{script} --quick did not finish within {BENCH_TIMEOUT_S}s")
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{stderr[-4000:]}"
    assert session_members(proc.pid) == {}, f"{script} left processes behind"
    lines = stdout.strip().splitlines()
    report: dict[str, Any] = json.loads(lines[-1])
    for name, target in report["targets"].items():
        assert set(target) >= TARGET_KEYS, name
        assert isinstance(target["met"], bool)
    return stdout, report


@pytest.mark.prefect
@pytest.mark.sandbox
def test_gate_overhead_quick_run_prints_every_row(tmp_path: Path) -> None:
    stdout, report = run_quick("gate_overhead.py", tmp_path)
    assert report["bench"] == "gate_overhead"
    rows = report["results"]["rows"]
    for row in ("subprocess.run", "ShellOperation.run() in flow", "tool-call task in flow, workspace-write"):
        assert row in stdout and rows[row]["n"] > 0
    assert [c["calls"] for c in report["results"]["record_cost"]] == [20, 200]
    assert "Record cost per tool call" in stdout
    # The sandboxed rows say which path they measured; here, where bwrap works, the run's kept sandbox.
    assert report["results"]["sandbox_path"].startswith("the run's kept-alive sandbox")
    assert f"ran in {report['results']['sandbox_path']}" in stdout


@pytest.mark.ssh
def test_exec_latency_quick_run_prints_every_path(tmp_path: Path) -> None:
    stdout, report = run_quick("exec_latency.py", tmp_path)
    assert report["bench"] == "exec_latency"
    results = report["results"]
    for path in ("raw PTY", "our local session", "raw paramiko channel", "our SSH session"):
        assert path in stdout
        assert results["latency_ms"][path]["n"] > 0 and results["bulk_mib_per_s"][path] > 0
    assert [load["sessions"] for load in results["concurrent"].values()] == [4, 4]


@pytest.mark.sandbox
def test_startup_quick_run_and_the_summary_table(tmp_path: Path) -> None:
    stdout, report = run_quick("startup.py", tmp_path)
    assert report["bench"] == "startup"
    assert "codex-orchestrator exec -- true" in stdout and report["results"]["rows"]
    (tmp_path / "startup.txt").write_text(stdout)
    summary = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "summary.py"), str(tmp_path / "startup.txt")],
        capture_output=True,
        text=True,
        check=False,
    )
    # Only the start-up figures were measured here: those rows carry a verdict, the others say so.
    assert "`codex-orchestrator exec -- true` wall time" in summary.stdout
    assert summary.stdout.count("not measured") == 6 and summary.returncode == 1


@pytest.mark.prefect
@pytest.mark.sandbox
def test_fanout_quick_run_prints_both_figures(tmp_path: Path) -> None:
    stdout, report = run_quick("fanout.py", tmp_path)
    assert report["bench"] == "fanout"
    results = report["results"]
    assert results["sequential_s"] > 0 and results["parallel_s"] > 0
    assert set(results["per_call_ms"]) == {"4", "16"}
    assert "independent `sleep" in stdout and "Per-call overhead" in stdout


@pytest.mark.prefect
@pytest.mark.sandbox
def test_interrupt_quick_run_times_ctrl_c_against_the_servers_floor(tmp_path: Path) -> None:
    stdout, report = run_quick("interrupt.py", tmp_path)
    assert report["bench"] == "interrupt"
    seconds = report["results"]["seconds"]
    assert [len(v) for v in seconds.values()] == [1, 1]
    assert "Seconds from Ctrl-C to exit" in stdout


def test_hostile_requests_quick_run_prints_every_row(tmp_path: Path) -> None:
    stdout, report = run_quick("hostile_requests.py", tmp_path)
    assert report["bench"] == "hostile_requests"
    for row in ("9-level alias bomb (YAML)", "100,000 levels deep (YAML)", "100,000 levels deep (JSON)"):
        assert row in stdout and report["results"]["cli_ms"][row]["n"] > 0
