"""Hardening at the command line: bad input refused at validation (exit 2, nothing written), the event log's
output budget, and Prefect's temporary server ending with a ``run`` that is killed with SIGKILL."""

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

from codex_orchestrator.reaper import start_time
from tests.conftest import ROOT, validate_events

CLI = [sys.executable, "-m", "codex_orchestrator.cli"]


def _cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _request(workspace: Path, **extra: Any) -> dict[str, Any]:
    return {"task": "hard", "workspace": str(workspace), "steps": [{"name": "s", "command": "ls"}], **extra}


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


BAD_REQUESTS: list[tuple[str, dict[str, Any], str]] = [
    ("missing-instructions", {"instructions": ["missing.md"]}, "instruction file 'missing.md' not found"),
    ("outside-instructions", {"instructions": ["../outside.md"]}, "inside the workspace"),
    ("absolute-instructions", {"instructions": ["/etc/hostname"]}, "inside the workspace"),
    ("nul-env-value", {"steps": [{"name": "s", "command": "ls", "env": {"A": "x\x00y"}}]}, "steps.0.env.A"),
    ("nul-env-name", {"steps": [{"name": "s", "command": "ls", "env": {"A\x00B": "x"}}]}, "NUL"),
    ("nul-command", {"steps": [{"name": "s", "command": "ls\x00 -l"}]}, "steps.0.command: contains a NUL"),
    ("nul-argv", {"steps": [{"name": "s", "command": ["ls", "a\x00b"]}]}, "NUL"),
    ("huge-command", {"steps": [{"name": "s", "command": "x" * 1024 * 1024}]}, "steps.0.command"),
    ("huge-goal", {"goal": "g" * 10 * 1024 * 1024}, "the limit is"),
]


@pytest.mark.parametrize(("case", "change", "needle"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_are_refused_at_validation(
    tmp_path: Path, workspace: Path, case: str, change: dict[str, Any], needle: str
) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(_request(workspace, **change)))
    before = _tree(workspace)
    done = _cli("run", str(request), cwd=tmp_path)
    assert done.returncode == 2, (case, done.stderr[-2000:])
    assert needle in done.stderr and done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert _tree(workspace) == before and not (workspace / ".runs").exists()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"# rules\n" + b"x" * (5 * 1024 * 1024), "the limit is"),
        (b"# rules\n\x00\x01\x02binary", "binary"),
        (b"# r\xe8gles\n", "not UTF-8"),
    ],
    ids=["5mb", "binary", "latin-1"],
)
def test_bad_agents_md_is_refused_at_validation(
    tmp_path: Path, workspace: Path, content: bytes, needle: str
) -> None:
    (workspace / "AGENTS.md").write_bytes(content)
    request = tmp_path / "request.yaml"
    request.write_text(yaml.safe_dump(_request(workspace)))
    done = _cli("run", str(request), cwd=tmp_path)
    assert done.returncode == 2 and needle in done.stderr and "AGENTS.md" in done.stderr, done.stderr[-2000:]
    assert not (workspace / ".runs").exists()


def test_instruction_hash_covers_the_whole_file(workspace: Path) -> None:
    import hashlib

    from codex_orchestrator.instructions import load_instructions

    data = ("# rules\n" + "y" * 1_000_100 + "\nthe end\n").encode()
    (workspace / "AGENTS.md").write_bytes(data)
    (found,) = [f for f in load_instructions(workspace) if f.path == "AGENTS.md"]
    assert found.sha256 == hashlib.sha256(data).hexdigest() and found.size_bytes == len(data)


def test_event_log_keeps_head_and_tail_within_the_budget(tmp_path: Path) -> None:
    total = 300_000
    script = f"import sys; sys.stdout.write('HEAD' + 'x' * {total - 8} + 'TAIL')"
    done = _cli(
        "exec", "--json", "--cwd", str(tmp_path), "--run-id", "budget", "--event-output-budget", "8192",
        "--", sys.executable, "-c", script,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    log = tmp_path / ".runs/exec/cli/budget/events.jsonl"
    events = validate_events(log)
    outputs = [e for e in events if e["type"] == "output"]
    (omitted,) = [e for e in events if e["type"] == "output.omitted"]
    logged = sum(len(e["data"].encode()) for e in outputs)
    assert logged <= 8192 and omitted["budget_bytes"] == 8192
    assert logged + omitted["omitted_bytes"] == total
    text = "".join(e["data"] for e in outputs)
    assert text.startswith("HEAD") and text.endswith("TAIL")
    assert events.index(omitted) > events.index(outputs[0]) and events.index(omitted) < events.index(
        outputs[-1]
    )
    assert log.stat().st_size < 64 * 1024
    manifest = json.loads((log.parent / "manifest.json").read_text())
    assert manifest["tool_calls"][0]["output_bytes"] == total  # the manifest still counts all of it


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_the_temporary_server_dies_with_a_killed_run(tmp_path: Path, workspace: Path) -> None:
    request = tmp_path / "request.yaml"
    step = {"name": "ask", "command": "true", "capabilities": ["network"]}
    request.write_text(yaml.safe_dump(_request(workspace, steps=[step], approval_timeout_s=600)))
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # its own database: the embedded server starts
    proc = subprocess.Popen(
        [*CLI, "run", str(request), "--run-id", "killed", "--no-prompt"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    manifest = workspace / ".runs/hard/cli/killed/manifest.json"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if (
                manifest.exists()
                and json.loads(manifest.read_text() or "{}").get("status") == "awaiting-approval"
            ):
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        servers = [c for c in _children(proc.pid) if "uvicorn" in _cmdline(c)]
        assert len(servers) == 1, [_cmdline(c) for c in _children(proc.pid)]
        server, started = servers[0], start_time(servers[0])
        assert started is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 120  # generous: a bound on the wait, not a timing assertion
        while time.monotonic() < deadline and start_time(server) == started:
            time.sleep(0.1)
        assert start_time(server) != started, f"the server {server} outlived the killed run"
    finally:
        proc.kill()
        proc.wait()
