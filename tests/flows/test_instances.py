"""Instances: calls spread over this machine and a real SSH host (sshd on loopback) within each instance's
limit, and a host lost mid-run whose call is placed again on an instance that is up."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, validate_events, validate_manifest
from tests.exec.sshd import SshdServer, running_sshd

pytestmark = [pytest.mark.prefect, pytest.mark.ssh]
CLI = [sys.executable, "-m", "codex_orchestrator.cli"]
WAIT_S = 240.0  # only stops a broken test from hanging


def _ssh(server: SshdServer) -> dict[str, Any]:
    target = server.target()
    return {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "key_file": target.key_file,
        "known_hosts": target.known_hosts,
    }


def _start(workspace: Path, run_id: str, env: dict[str, str], **request: Any) -> subprocess.Popen[str]:
    path = workspace.parent / f"{run_id}.yaml"
    path.write_text(
        yaml.safe_dump(
            {"task": "instances", "workspace": str(workspace), "profile": ["read", "edit", "run"], **request}
        )
    )
    return subprocess.Popen(
        [*CLI, "run", str(path), "--run-id", run_id, "--no-prompt"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _manifest(workspace: Path, run_id: str) -> dict[str, Any]:
    path = workspace / ".runs" / "instances" / "cli" / run_id / "manifest.json"
    validate_events(path.parent / "events.jsonl")
    return validate_manifest(path)


def test_two_instances_with_a_limit_of_one_share_four_calls(
    prefect_server: str, workspace: Path, tmp_path: Path
) -> None:
    with running_sshd(tmp_path / "sshd") as server:
        instances = [
            {"name": "here", "max_concurrency": 1},
            {"name": "there", "max_concurrency": 1, "ssh": _ssh(server)},
        ]
        steps = [{"name": f"s{i}", "command": f"echo {i} > out-{i}.txt; sleep 0.3"} for i in range(4)]
        proc = _start(
            workspace, "shared", {"PREFECT_API_URL": prefect_server}, instances=instances, steps=steps
        )
        _out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err
    data = _manifest(workspace, "shared")
    by_instance: dict[str, list[dict[str, Any]]] = {}
    for call in data["tool_calls"]:
        by_instance.setdefault(call["instance"], []).append(call)
    assert set(by_instance) == {"here", "there"}  # both hosts took calls
    assert sum(len(calls) for calls in by_instance.values()) == 4
    for calls in by_instance.values():  # a limit of 1: no two calls of one instance overlapped
        spans = sorted((c["started_at"], c["finished_at"]) for c in calls)
        assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))
    there = next(c for c in by_instance["there"])
    assert there["backend"].startswith("ssh://")
    stats = {s["name"]: s for s in data["instance_stats"]}
    assert stats["here"]["calls"] + stats["there"]["calls"] == 4 and stats["there"]["failures"] == 0
    assert sorted(p.name for p in workspace.glob("out-*.txt")) == [f"out-{i}.txt" for i in range(4)]


def test_a_lost_host_marks_it_down_and_its_call_runs_elsewhere(
    prefect_server: str, workspace: Path, tmp_path: Path
) -> None:
    command = 'if [ -n "$SSH_CONNECTION" ]; then echo started-remotely; sleep 60; else echo ran-here; fi'
    with running_sshd(tmp_path / "sshd") as server:
        instances = [
            {"name": "there", "max_concurrency": 1, "ssh": _ssh(server)},
            {"name": "here", "max_concurrency": 1},
        ]
        proc = _start(
            workspace,
            "lost",
            {"PREFECT_API_URL": prefect_server},
            instances=instances,
            steps=[{"name": "work", "command": command}],
        )
        events = workspace / ".runs" / "instances" / "cli" / "lost" / "events.jsonl"
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if events.exists() and "started-remotely" in events.read_text():
                break
            time.sleep(0.1)
        else:
            proc.kill()
            raise AssertionError("the call never started on the SSH host")
        server.kill()  # the host vanishes mid-call
        _out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err
    data = _manifest(workspace, "lost")
    call = data["tool_calls"][0]
    assert call["status"] == "succeeded" and call["instance"] == "here" and "ran-here" in call["output_tail"]
    assert call["lineage"][0]["instance"] == "there"
    assert {i["name"]: i["status"] for i in data["instances"]} == {"there": "down"}
    stats = {s["name"]: s for s in data["instance_stats"]}
    assert stats["there"]["status"] == "down" and stats["there"]["failures"] == 1
    kinds = [json.loads(line)["type"] for line in events.read_text().splitlines()]
    assert "instance.down" in kinds
