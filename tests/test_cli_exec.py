"""``exec`` as a user meets it when things go wrong: stdin that is not a terminal, SSH failures, exit codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_orchestrator.execcmd import EXIT_SSH
from tests.conftest import validate_manifest
from tests.exec.sshd import SshdServer, known_hosts_line, running_sshd
from tests.test_cli import CLI, cli


def _last_manifest(runs: Path) -> dict[str, object]:
    (path,) = sorted(runs.glob("*/cli/*/manifest.json"))
    return validate_manifest(path)


# -- item 2: without --stdin the command sees end-of-file at once -----------------------------------------------
@pytest.mark.parametrize("mode", [[], ["--json"]])
def test_a_command_reading_stdin_gets_eof_without_stdin(tmp_path: Path, mode: list[str]) -> None:
    # stdin is /dev/null (not a TTY) and --stdin is not given: before the fix `cat` waited for --timeout.
    done = subprocess.run(
        [
            *CLI,
            "exec",
            *mode,
            "--cwd",
            str(tmp_path),
            "--timeout",
            "60",
            "--",
            "sh",
            "-c",
            "cat; echo eof-seen",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "eof-seen" in done.stdout
    call = _last_manifest(tmp_path / ".runs")["tool_calls"][0]  # type: ignore[index]
    assert call["status"] == "succeeded"


@pytest.mark.parametrize("mode", [[], ["--json"]])
def test_a_reader_closing_stdout_ends_the_stream_not_the_run(tmp_path: Path, mode: list[str]) -> None:
    # `exec --json | head -1`: before the fix the next write raised BrokenPipeError, a traceback, and exit 1.
    script = "echo first; while [ ! -e go ]; do sleep 0.05; done; seq 1 20000; echo done > finished"
    proc = subprocess.Popen(
        [*CLI, "exec", *mode, "--cwd", str(tmp_path), "--", "sh", "-c", script],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "first" in line:
            break
    proc.stdout.close()  # the reader goes away while the command still has output to write
    (tmp_path / "go").touch()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "stdout was closed" in stderr
    assert (tmp_path / "finished").read_text() == "done\n"  # the command ran to its end
    manifest = _last_manifest(tmp_path / ".runs")
    assert manifest["status"] == "succeeded"
    assert manifest["tool_calls"][0]["status"] == "succeeded"  # type: ignore[index]


# -- item 3: SSH failures say why on stderr and exit 255 --------------------------------------------------------
@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshdServer]:
    with running_sshd(tmp_path / "sshd") as server:
        yield server


def _ssh_args(
    server: SshdServer, cwd: Path, *, key: Path | None = None, known_hosts: Path | None = None
) -> list[str]:
    return [
        "--cwd",
        str(cwd),
        "--ssh",
        f"{server.user}@{server.host}:{server.port}",
        "--identity-file",
        str(key or server.client_key),
        "--known-hosts",
        str(known_hosts or server.known_hosts),
    ]


def _assert_one_clear_failure(done: subprocess.CompletedProcess[str], needle: str) -> None:
    assert done.returncode == EXIT_SSH, done.stderr
    assert "Traceback" not in done.stderr
    cause = [line for line in done.stderr.splitlines() if line.startswith("✗ failed:")]
    assert len(cause) == 1 and needle in cause[0], done.stderr


@pytest.mark.ssh
def test_ssh_wrong_key_unknown_and_changed_host_keys(sshd: SshdServer, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    wrong = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    done = cli("exec", *_ssh_args(sshd, work, key=wrong), "--", "true", cwd=work)
    _assert_one_clear_failure(done, "authentication failed")
    assert _last_manifest(work / ".runs")["tool_calls"][0]["failure"] == "ssh-connect"  # type: ignore[index]

    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    done = cli("exec", *_ssh_args(sshd, work, known_hosts=empty), "--", "true", cwd=work)
    _assert_one_clear_failure(done, "host key unknown")
    assert "--trust-on-first-use" in done.stderr and sshd.host_fingerprint in done.stderr

    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    changed = tmp_path / "changed_known_hosts"
    changed.write_text(known_hosts_line(sshd.host, sshd.port, other.with_suffix(".pub")))
    done = cli("exec", *_ssh_args(sshd, work, known_hosts=changed), "--", "true", cwd=work)
    _assert_one_clear_failure(done, "host key CHANGED")


@pytest.mark.ssh
def test_ssh_closed_port_and_unknown_host(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        done = cli("exec", "--ssh", f"root@127.0.0.1:{port}", "--", "true", cwd=tmp_path)
    _assert_one_clear_failure(done, "nothing accepts connections")
    done = cli("exec", "--ssh", "root@no-such-host.invalid", "--", "true", cwd=tmp_path)
    _assert_one_clear_failure(done, "cannot resolve host name 'no-such-host.invalid'")


@pytest.mark.ssh
def test_ssh_listener_that_never_speaks(tmp_path: Path) -> None:
    accepted: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def hold() -> None:
            connection, _ = listener.accept()
            accepted.append(connection)  # kept open and silent until the test ends

        threading.Thread(target=hold, daemon=True).start()
        port = listener.getsockname()[1]
        done = cli("exec", "--ssh", f"root@127.0.0.1:{port}", "--", "true", cwd=tmp_path)
    for connection in accepted:
        connection.close()
    _assert_one_clear_failure(done, "did not complete an SSH handshake")
    call = _last_manifest(tmp_path / ".runs")["tool_calls"][0]  # type: ignore[index]
    assert "No existing session" not in call["error"]


@pytest.mark.ssh
def test_ssh_connection_lost_mid_command_exits_255(sshd: SshdServer, tmp_path: Path) -> None:
    with subprocess.Popen(
        [*CLI, "exec", *_ssh_args(sshd, tmp_path), "--", "sh", "-c", "echo started; exec sleep 300"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            if "started" in line:
                break
        sshd.kill()
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_SSH, stderr
    assert "lost" in stderr and "Traceback" not in stderr
    call = _last_manifest(tmp_path / ".runs")["tool_calls"][0]  # type: ignore[index]
    assert call["failure"] == "ssh-connection-lost"


@pytest.mark.ssh
def test_ssh_header_shows_the_remote_cwd(sshd: SshdServer, tmp_path: Path) -> None:
    remote = tmp_path / "remote-dir"
    remote.mkdir()
    local = tmp_path / "local"
    local.mkdir()
    done = cli("exec", *_ssh_args(sshd, remote), "--", "pwd", cwd=local)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(remote)
    header = done.stderr.splitlines()[0]
    assert header.startswith("▶ pwd") and f"cwd {remote})" in header
    json_out = cli("exec", "--json", *_ssh_args(sshd, remote), "--", "true", cwd=local).stdout
    events = [json.loads(line) for line in json_out.splitlines()]
    started = next(e for e in events if e["type"] == "tool_call.started")
    assert started["cwd"] == str(remote)


# -- issue 21, item 7: --workspace without --cwd runs in the workspace, here and on an SSH host ------------------
def test_workspace_without_cwd_runs_in_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "sub").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"  # the shell's directory, outside the workspace
    elsewhere.mkdir()
    done = cli("exec", "--workspace", str(workspace), "--", "pwd", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(workspace)
    assert _last_manifest(workspace / ".runs")["tool_calls"][0]["cwd"] == "."  # type: ignore[index]
    # --cwd still wins, and must still lie inside the workspace.
    done = cli(
        "exec", "--workspace", str(workspace), "--cwd", str(workspace / "sub"), "--", "pwd", cwd=elsewhere
    )
    assert done.returncode == 0 and done.stdout.strip() == str(workspace / "sub"), done.stderr
    refused = cli("exec", "--workspace", str(workspace), "--cwd", str(elsewhere), "--", "pwd", cwd=elsewhere)
    assert refused.returncode == 2 and "is not inside the workspace" in refused.stderr


@pytest.mark.ssh
def test_ssh_workspace_without_cwd_runs_in_the_workspace(sshd: SshdServer, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ssh = _ssh_args(sshd, workspace)[2:]  # without --cwd
    done = cli("exec", "--workspace", str(workspace), *ssh, "--", "pwd", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(workspace)
    assert (workspace / ".runs").is_dir() and not (elsewhere / ".runs").exists()


# -- item 9: run records never land in the workspace's commits ---------------------------------------------------
def test_the_runs_directory_ignores_itself(workspace: Path) -> None:
    done = cli("exec", "--cwd", str(workspace), "--", "true", cwd=workspace)
    assert done.returncode == 0, done.stderr
    assert (workspace / ".runs" / ".gitignore").read_text().splitlines()[-1] == "*"
    subprocess.run(["git", "add", "-A"], cwd=workspace, check=True)  # what an agent's commit step does
    staged = subprocess.run(
        ["git", "status", "--porcelain", "--ignored=no"], cwd=workspace, capture_output=True, text=True
    )
    assert staged.stdout == ""


# -- item 5: an existing run id is refused before anything starts ----------------------------------------------
def test_run_with_an_existing_run_id_exits_2_in_one_line(workspace: Path, tmp_path: Path) -> None:
    first = cli(
        "exec", "--task", "t", "--run-id", "taken-1", "--cwd", str(workspace), "--", "true", cwd=workspace
    )
    assert first.returncode == 0, first.stderr
    (manifest,) = (workspace / ".runs").glob("t/cli/taken-1/manifest.json")
    before = manifest.read_bytes()
    request = tmp_path / "request.yaml"
    request.write_text(f"task: t\nworkspace: {workspace}\nsteps: [{{name: s, command: 'true'}}]\n")
    done = cli("run", str(request), "--run-id", "taken-1", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "already exists" in done.stderr and "--run-id" in done.stderr
    assert "manifest:" not in done.stderr and "Traceback" not in done.stderr
    assert manifest.read_bytes() == before
