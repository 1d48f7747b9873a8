"""The command line as a user meets it: exit codes, clear errors that write nothing, JSON Lines, SSH, approvals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codex_orchestrator.execcmd import EXIT_DENIED, EXIT_TIMED_OUT
from tests.conftest import ROOT, validate_event_lines, validate_manifest
from tests.exec.sshd import SshdServer, running_sshd

CLI = [sys.executable, "-m", "codex_orchestrator.cli"]


def cli(
    *args: str,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        input=stdin if stdin is not None else "",
    )


def test_help_teaches() -> None:
    done = cli("--help")
    assert done.returncode == 0 and "exec" in done.stdout and "approve" in done.stdout
    assert "--policy" in cli("exec", "--help").stdout


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (
            "task: t\nworkspace: .\napproval_policy: sometimes\nsteps: [{name: s, command: ls}]\n",
            "approval_policy",
        ),
        ("task: t\nworkspace: .\nprofile: [read, root]\nsteps: [{name: s, command: ls}]\n", "profile"),
        ("task: ../../etc\nworkspace: .\nsteps: [{name: s, command: ls}]\n", "task"),
        ("task: t\nworkspace: ./missing\nsteps: [{name: s, command: ls}]\n", "workspace"),
        ("task: [unclosed\n", "not valid YAML"),
    ],
)
def test_run_rejects_bad_requests_with_exit_2_and_writes_nothing(
    tmp_path: Path, content: str, needle: str
) -> None:
    request = tmp_path / "request.yaml"
    request.write_text(content)
    before = sorted(p.name for p in tmp_path.iterdir())
    done = cli("run", str(request), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and done.stderr.count("\n") <= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--policy", "sometimes", "--", "ls"], "--policy"),
        (["--profile", "read,fly", "--", "ls"], "fly"),
        (["--sandbox", "docker", "--", "ls"], "--sandbox"),
        (["--task", "../x", "--", "ls"], "task"),
        (["--timeout", "0", "--", "ls"], "--timeout"),
        (["--ssh", "host:notaport", "--", "ls"], "--ssh"),
        ([], "no command"),
        (["--bogus"], "unrecognized"),
    ],
)
def test_exec_usage_errors_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    done = cli("exec", "--cwd", str(tmp_path), *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert needle in done.stderr
    assert not (tmp_path / ".runs").exists()


def _json_lines(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return validate_event_lines(done.stdout.splitlines())


def test_exec_json_passes_the_exit_code_and_validates(tmp_path: Path) -> None:
    done = cli("exec", "--json", "--cwd", str(tmp_path), "--", "sh", "-c", "echo hello; exit 3")
    assert done.returncode == 3, done.stderr
    events = _json_lines(done)
    assert events[0]["type"] == "run.started" and events[-1]["type"] == "summary"
    assert events[-2]["type"] == "run.finished"
    summary = events[-1]
    assert summary["exit_code"] == 3 and summary["status"] == "failed" and summary["attempts"] == 1
    assert summary["sandbox_state"] == "sandboxed" and summary["approval_source"] == "not-required"
    assert "hello" in "".join(e["data"] for e in events if e["type"] == "output")
    manifest = validate_manifest(tmp_path / summary["manifest"])
    assert manifest["mode"] == "exec" and manifest["tool_calls"][0]["exit_code"] == 3


def test_exec_denied_and_timed_out_have_their_own_codes(tmp_path: Path) -> None:
    denied = cli(
        "exec", "--json", "--cwd", str(tmp_path), "--policy", "never", "--profile", "read", "--", "touch", "f"
    )
    assert denied.returncode == EXIT_DENIED and not (tmp_path / "f").exists()
    assert _json_lines(denied)[-1]["status"] == "denied"
    timed = cli("exec", "--json", "--cwd", str(tmp_path), "--timeout", "0.5", "--", "sleep", "30")
    assert timed.returncode == EXIT_TIMED_OUT
    assert _json_lines(timed)[-1]["status"] == "timed-out"


def test_exec_with_no_approver_denies_and_says_why(tmp_path: Path) -> None:
    done = cli("exec", "--cwd", str(tmp_path), "--profile", "read", "--approver", "none", "--", "touch", "f")
    assert done.returncode == EXIT_DENIED and not (tmp_path / "f").exists()
    manifest = next((tmp_path / ".runs").glob("exec/cli/*/manifest.json"))
    assert "--approver none" in validate_manifest(manifest)["tool_calls"][0]["error"]


def test_exec_human_mode_streams_and_summarises(tmp_path: Path) -> None:
    done = cli("exec", "--cwd", str(tmp_path), "--", "echo", "visible-output")
    assert done.returncode == 0
    assert "visible-output" in done.stdout
    assert "succeeded" in done.stderr and ".runs/exec/cli/" in done.stderr


def test_exec_stdin_is_forwarded(tmp_path: Path) -> None:
    done = cli(
        "exec",
        "--json",
        "--stdin",
        "--cwd",
        str(tmp_path),
        "--",
        "sh",
        "-c",
        "read x; echo got:$x",
        stdin="ping\n",
    )
    assert done.returncode == 0, done.stderr
    assert "got:ping" in "".join(e["data"] for e in _json_lines(done) if e["type"] == "output")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def test_exec_over_ssh(sshd: SshdServer, tmp_path: Path) -> None:
    dest = f"{sshd.user}@{sshd.host}:{sshd.port}"
    common = ["--json", "--cwd", str(tmp_path), "--ssh", dest, "--identity-file", str(sshd.client_key)]
    done = cli(
        "exec",
        *common,
        "--known-hosts",
        str(sshd.known_hosts),
        "--",
        "sh",
        "-c",
        "test -t 0 && echo remote-tty; exit 4",
    )
    assert done.returncode == 4, done.stderr
    events = _json_lines(done)
    assert "remote-tty" in "".join(e["data"] for e in events if e["type"] == "output")
    assert events[-1]["sandbox_state"] == "none"
    started = next(e for e in events if e["type"] == "tool_call.started")
    assert started["backend"].startswith("ssh://")
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    refused = cli("exec", *common, "--known-hosts", str(empty), "--", "true")
    assert refused.returncode != 0
    finished = next(e for e in _json_lines(refused) if e["type"] == "attempt.finished")
    assert "host key unknown" in finished["error"] and "trust" in finished["error"]


def test_approve_errors(tmp_path: Path) -> None:
    missing = cli("approve", "no-such-run", "--runs-dir", str(tmp_path))
    assert missing.returncode == 2 and "no-such-run" in missing.stderr
    cli("exec", "--cwd", str(tmp_path), "--run-id", "done-run", "--", "true")
    not_pending = cli("approve", "done-run", "--runs-dir", str(tmp_path / ".runs"))
    assert not_pending.returncode == 1 and "no pending approval" in not_pending.stderr
    both = cli("approve", "done-run", "--deny", "--for-session", "--runs-dir", str(tmp_path / ".runs"))
    assert both.returncode == 2


@pytest.mark.prefect
def test_exec_pauses_under_prefect_and_the_cli_approves(prefect_server: str, tmp_path: Path) -> None:
    env = {"PREFECT_API_URL": prefect_server}
    proc = subprocess.Popen(
        [
            *CLI,
            "exec",
            "--json",
            "--cwd",
            str(tmp_path),
            "--run-id",
            "paused-exec",
            "--profile",
            "read",
            "--approver",
            "prefect",
            "--",
            "touch",
            "approved-file",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    try:
        manifest = tmp_path / ".runs/exec/cli/paused-exec/manifest.json"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if manifest.exists() and json.loads(manifest.read_text()).get("pending_approval"):
                break
            time.sleep(0.2)
        answer = cli("approve", "paused-exec", "--runs-dir", str(tmp_path / ".runs"), env=env)
        assert answer.returncode == 0, answer.stderr
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert (tmp_path / "approved-file").exists()
    events = validate_event_lines(out.splitlines())
    assert events[-1]["approval_source"] == "human"
    data = validate_manifest(manifest)
    assert data["prefect"]["api_url"] and data["approvals"][0]["answered_by"] == "cli"


@pytest.mark.prefect
def test_exec_on_a_saved_ssh_host_block(prefect_server: str, sshd: SshdServer, tmp_path: Path) -> None:
    from pydantic import SecretStr

    from blocks.ssh_host import SshHost

    key_text = Path(sshd.client_key).read_text()
    SshHost(
        hostname=sshd.host,
        port=sshd.port,
        username=sshd.user,
        private_key=SecretStr(key_text),
        known_hosts_path=str(sshd.known_hosts),
    ).save("loopback-test", overwrite=True)
    env = {"PREFECT_API_URL": prefect_server}
    done = cli(
        "exec",
        "--json",
        "--cwd",
        str(tmp_path),
        "--host",
        "loopback-test",
        "--",
        "echo",
        "via-block",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    events = _json_lines(done)
    assert "via-block" in "".join(e["data"] for e in events if e["type"] == "output")
    for path in (tmp_path / ".runs").rglob("*"):
        if path.is_file():
            assert "PRIVATE KEY" not in path.read_text(), path
    unknown = cli("exec", "--cwd", str(tmp_path), "--host", "no-such-host", "--", "true", env=env)
    assert unknown.returncode == 2 and "no-such-host" in unknown.stderr


@pytest.mark.prefect
def test_run_at_a_terminal_asks_there(prefect_server: str, workspace: Path, tmp_path: Path) -> None:
    from codex_orchestrator.exec.backend import SpawnRequest
    from codex_orchestrator.exec.local import LocalPtyBackend
    from codex_orchestrator.exec.session import ExecSessionManager, OutputEvent

    request = tmp_path / "request.yaml"
    request.write_text(
        f"task: tty-test\nworkspace: {workspace}\nsandbox: none\nprofile: [read, run]\n"
        "steps: [{name: publish, command: 'true', capabilities: [network]}]\n"
    )
    seen: list[bytes] = []

    def collect(event: OutputEvent) -> None:
        seen.append(event.data)

    # The child inherits our environment; the PTY backend pins TERM=dumb and NO_COLOR for plain output.
    env = {"PREFECT_API_URL": prefect_server, "COLUMNS": "200"}
    with ExecSessionManager() as sessions:
        session = sessions.open(
            LocalPtyBackend(),
            SpawnRequest(argv=(*CLI, "run", str(request), "--run-id", "tty-run"), cwd=str(ROOT), env=env),
            subscribers=[collect],
        )
        deadline = time.monotonic() + 90
        while b"deny (n)" not in b"".join(seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert b"capabilities needed" in b"".join(seen)
        session.write(b"y\n")
        assert session.wait(90) == 0, b"".join(seen).decode(errors="replace")[-2000:]
    data = validate_manifest(workspace / ".runs/tty-test/cli/tty-run/manifest.json")
    assert data["approvals"][0]["answered_by"] == "terminal"
    assert data["tool_calls"][0]["approval_source"] == "human"


def test_exec_of_a_missing_program_exits_127(tmp_path: Path) -> None:
    done = cli("exec", "--json", "--cwd", str(tmp_path), "--", "no-such-program-xyz")
    assert done.returncode == 127
    summary = _json_lines(done)[-1]
    assert summary["type"] == "summary" and summary["status"] == "failed" and summary["exit_code"] is None


def test_sigterm_ends_exec_and_its_tree_and_records_the_run(tmp_path: Path) -> None:
    import signal
    import uuid

    marker = f"co-sigterm-{uuid.uuid4().hex}"
    proc = subprocess.Popen(
        [
            *CLI,
            "exec",
            "--json",
            "--cwd",
            str(tmp_path),
            "--run-id",
            "term-run",
            "--sandbox",
            "none",
            "--",
            "sh",
            "-c",
            f"echo started; sleep 300; : {marker}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if '"started' in line:
                break
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143  # 128 + SIGTERM, recorded as such
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout.strip() == ""
    data = validate_manifest(tmp_path / ".runs/exec/cli/term-run/manifest.json")
    assert data["status"] == "interrupted" and data["exit_code"] == 143
    assert "interrupted by signal 15" in (data["error"] or "")
    assert data["tool_calls"][0]["attempts"][0]["error"].startswith("interrupted")
