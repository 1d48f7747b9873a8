"""Everyday git reads through the real gate and the real read sandbox (bwrap), policy untrusted, profile [read].

The repository's config points every program-running setting git has at one hostile script: filters,
textconv, diff.external, pager, fsmonitor, hooks, gpg, sshCommand, credential helper, an alias. The script
says that it ran, then tries to write into the workspace and beside it and to reach a TCP server on the host's
loopback and a Unix socket outside the sandbox. Every everyday read (tests/data/everyday_reads.jsonl) must run
unasked and succeed there, and none of those attempts may have any effect; run without the gate, the same
commands do have them (the fixture is honest).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from codex_orchestrator import read_sandbox
from codex_orchestrator.approvals import Decision
from codex_orchestrator.commands import call_facts
from codex_orchestrator.exec import no_sockets
from codex_orchestrator.policy import ApprovalPolicy, Capability, Outcome, ToolKind, decide
from codex_orchestrator.read_sandbox import NO_SOCKETS_SCRIPT
from codex_orchestrator.sandbox import SandboxMode, probe
from codex_orchestrator.shell_attempt import wrap
from tests.test_commands_corpus import hand_written
from tests.test_gate import ScriptedApprover, finish, make_gate, shell

DATA = Path(__file__).parent / "data" / "everyday_reads.jsonl"
READ_ONLY = frozenset({Capability.READ})
ROWS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if '"command"' in line]
EVERYDAY = [row["command"] for row in ROWS]

needs_bwrap = pytest.mark.skipif(not probe().available, reason="needs a working bubblewrap")


def test_the_everyday_corpus_is_varied_and_none_of_it_is_asked() -> None:
    assert len(ROWS) >= 40 and len(set(EVERYDAY)) == len(EVERYDAY)
    assert {"status", "diff", "log -p", "show", "blame", "sh -c", "&&", "pipe"} <= {r["class"] for r in ROWS}
    asked = [
        c
        for c in EVERYDAY
        if decide(ApprovalPolicy.UNTRUSTED, READ_ONLY, call_facts(ToolKind.SHELL, c)).outcome
        is not Outcome.SKIP
    ]
    assert asked == []


def test_no_hostile_command_needs_only_the_read_sandbox() -> None:
    """The hostile corpus (test_commands_corpus.py) is asked: none of it became read-only in the read sandbox."""
    assert not any(call_facts(ToolKind.SHELL, c).read_sandbox for c in hand_written())


@pytest.fixture
def hostile(workspace: Path, tmp_path: Path) -> Iterator[tuple[Path, socket.socket, socket.socket]]:
    """``workspace`` with a second commit, staged and unstaged changes, and hostile config everywhere.
    Yields the markers directory and two listening sockets that nothing may connect to."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    calc = workspace / "calc.py"
    calc.write_text(calc.read_text() + "\n\ndef add_more(a, b):\n    return a + b\n")
    subprocess.run([*git, "commit", "-qam", "add more"], cwd=workspace, check=True)
    (workspace / "README.md").write_text((workspace / "README.md").read_text() + "\nstaged line\n")
    subprocess.run(["git", "add", "README.md"], cwd=workspace, check=True)
    calc.write_text(calc.read_text() + "# changed\n")

    markers = tmp_path / "markers"
    markers.mkdir()
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(64)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(markers / "service.sock"))
    unix.listen(64)
    for server in (tcp, unix):
        server.setblocking(False)
    evil = tmp_path / "evil.sh"
    reach = (
        "import socket, sys\n"
        "for family, address in ((socket.AF_INET, ('127.0.0.1', int(sys.argv[1]))), (socket.AF_UNIX, sys.argv[2])):\n"
        "    try:\n"
        "        socket.socket(family).connect(address)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    # Says it ran (stdout: a textconv's or diff's output, a clean filter's content), then tries its worst.
    evil.write_text(
        "#!/bin/sh\n"
        'case "$1" in filter|smudge) cat ;; textconv) cat "$2" ;; esac\n'
        'echo "EVIL-RAN-$1"\n'
        f'touch "{workspace}/pwned-$1" "{markers}/$1" 2>/dev/null\n'
        f'{sys.executable} -c "{reach}" {tcp.getsockname()[1]} "{markers}/service.sock" 2>/dev/null\n'
        "exit 0\n"
    )
    evil.chmod(0o755)
    config = {
        "core.fsmonitor": f"{evil} fsmonitor",
        "core.pager": f"{evil} pager",
        "pager.diff": f"{evil} pager-diff",
        "pager.log": f"{evil} pager-log",
        "diff.external": f"{evil} external",
        "diff.x.textconv": f"{evil} textconv",
        "filter.x.clean": f"{evil} filter",
        "filter.x.smudge": f"{evil} smudge",
        "core.hooksPath": str(tmp_path / "hooks"),
        "gpg.program": f"{evil} gpg",
        "log.showSignature": "true",
        "core.sshCommand": f"{evil} ssh",
        "credential.helper": f"!{evil} credential",
        "alias.st": f"!{evil} alias",
    }
    for key, value in config.items():
        subprocess.run(["git", "config", key, value], cwd=workspace, check=True)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("post-index-change", "post-checkout", "reference-transaction"):
        (hooks / hook).write_text(f'#!/bin/sh\nexec "{evil}" hook-{hook}\n')
        (hooks / hook).chmod(0o755)
    (workspace / ".git" / "info" / "attributes").write_text("* filter=x diff=x\n")
    yield markers, tcp, unix
    tcp.close()
    unix.close()


def _effects(workspace: Path, markers: Path, *servers: socket.socket) -> list[str]:
    found = [p.name for p in workspace.iterdir() if p.name.startswith("pwned-")]
    found += [p.name for p in markers.iterdir() if p.name != "service.sock"]
    found += [f"a connection to {server.getsockname()!r}" for server in servers if _accepted(server)]
    return found


@needs_bwrap
def test_the_hostile_config_really_acts_without_the_gate(
    workspace: Path, hostile: tuple[Path, socket.socket, socket.socket]
) -> None:
    """Honesty check: run as they are, the everyday reads run the script, which writes and connects."""
    markers, tcp, unix = hostile
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_PAGER", "PAGER")}
    outputs = [
        subprocess.run(
            c, shell=True, cwd=workspace, env=env, capture_output=True, text=True, check=False
        ).stdout
        for c in ("git diff", "git log -p -1 --no-ext-diff", "git status")
    ]
    assert "EVIL-RAN-external" in outputs[0] and "EVIL-RAN-textconv" in outputs[1]
    effects = _effects(workspace, markers, tcp, unix)
    assert {"pwned-external", "external", "textconv", "filter"} <= set(effects)
    assert any("connection" in e for e in effects) and len([e for e in effects if "connection" in e]) == 2


@needs_bwrap
def test_everyday_git_reads_run_unasked_in_the_read_sandbox_and_the_config_has_no_effect(
    workspace: Path, hostile: tuple[Path, socket.socket, socket.socket]
) -> None:
    markers, tcp, unix = hostile
    approver = ScriptedApprover()
    # The run's sandbox mode is none: the read sandbox is the call's own condition for running unasked.
    gate = make_gate(
        workspace, approver, policy=ApprovalPolicy.UNTRUSTED, profile=READ_ONLY, sandbox=SandboxMode.NONE
    )
    ran: set[str] = set()
    confined = 0
    for i, command in enumerate(EVERYDAY):
        call = gate.run(shell(workspace, command, step=f"read-{i}", timeout_s=120.0))
        assert approver.asked == [], command
        assert call.approval_source == "not-required", command
        if call_facts(ToolKind.SHELL, command).read_sandbox:  # else read-only anywhere (`git show --stat`)
            confined += 1
            assert "read sandbox" in (call.approval_reason or ""), command
            assert call.sandbox.state == "sandboxed" and call.sandbox.mode == "read-only", command
        assert call.status == "succeeded", f"{command}: {call.output_tail}"
        ran |= {tag for tag in ("external", "textconv", "filter") if f"EVIL-RAN-{tag}" in call.output_tail}
        assert _effects(workspace, markers, tcp, unix) == [], command
    finish(gate)
    # The drivers no config value can switch off did run, inside: what they did had no effect.
    assert ran >= {"external", "textconv"} and confined >= 60


@needs_bwrap
def test_the_read_sandbox_refuses_a_socket_the_read_only_bind_would_let_through(
    workspace: Path, tmp_path: Path
) -> None:
    """A Unix socket on the host (a daemon's) stays reachable through a read-only bind; not from the read sandbox."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "daemon.sock"))
    server.listen(8)
    server.setblocking(False)
    connect = f"import socket; socket.socket(socket.AF_UNIX).connect({str(tmp_path / 'daemon.sock')!r})"
    argv = ("/bin/sh", "-c", f"cat calc.py >/dev/null && {sys.executable} -c {shlex.quote(connect)}")
    plain = replace(read_sandbox.choice(workspace, "bwrap"), inner=())
    for choice, refused in ((plain, False), (read_sandbox.choice(workspace, "bwrap"), True)):
        done = subprocess.run(
            wrap(argv, shell(workspace, "true"), choice), capture_output=True, text=True, check=False
        )
        accepted = _accepted(server)
        assert (done.returncode != 0, accepted) == (refused, not refused), done.stderr
        assert not refused or "Operation not permitted" in done.stderr
    server.close()


def _accepted(server: socket.socket) -> bool:
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def test_the_filter_refuses_sockets_and_keeps_the_rest() -> None:
    code = no_sockets.program("x86_64")
    assert len(code) % 8 == 0 and len(code) // 8 == 6 + len(no_sockets.ARCHES["x86_64"][1])
    with pytest.raises(KeyError):
        no_sockets.program("sparc")
    script = "import socket, os; a, b = socket.socketpair(); os.write(1, b'pair-ok ');" + "socket.socket()"
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(NO_SOCKETS_SCRIPT), sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_EXTERNAL_DIFF": "x", "GIT_SSH_COMMAND": "x"},
        check=False,
    )
    assert done.stdout == "pair-ok " and "PermissionError" in done.stderr
    shown = subprocess.run(
        [sys.executable, "-I", "-S", str(NO_SOCKETS_SCRIPT), "env"],
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_EXTERNAL_DIFF": "x", "GIT_SSH_COMMAND": "x", "KEEP_ME": "1"},
        check=True,
    ).stdout
    assert "KEEP_ME=1" in shown and "GIT_EXTERNAL_DIFF" not in shown and "GIT_SSH_COMMAND" not in shown


def test_without_bwrap_the_same_reads_are_asked(workspace: Path) -> None:
    approver = ScriptedApprover(Decision.DENY, Decision.DENY)
    gate = make_gate(workspace, approver, policy=ApprovalPolicy.UNTRUSTED, profile=READ_ONLY)
    gate.config = replace(gate.config, bwrap_path="/nonexistent/bwrap")
    for command in ("git status", "sh -c 'git diff | head'"):
        call = gate.run(shell(workspace, command, step=command))
        assert call.status == "denied" and "run" in approver.asked[-1].needs
    assert len(approver.asked) == 2
    finish(gate)


@needs_bwrap
@pytest.mark.parametrize(
    "policy", [ApprovalPolicy.UNTRUSTED, ApprovalPolicy.ON_FAILURE, ApprovalPolicy.NEVER]
)
def test_every_policy_that_would_ask_or_forbid_runs_it_in_the_read_sandbox(
    workspace: Path, policy: ApprovalPolicy
) -> None:
    approver = ScriptedApprover()
    gate = make_gate(workspace, approver, policy=policy, profile=READ_ONLY)
    call = gate.run(shell(workspace, "git diff HEAD | head -5"))
    assert call.status == "succeeded" and approver.asked == [] and call.sandbox.mode == "read-only"
    assert call.sandbox.detail is not None and "read sandbox" in call.sandbox.detail
    finish(gate)


@needs_bwrap
def test_a_profile_that_grants_run_keeps_the_runs_own_sandbox(workspace: Path) -> None:
    """Where the profile lets the command run as it is, the read sandbox is not imposed on it."""
    gate = make_gate(workspace, ScriptedApprover(), policy=ApprovalPolicy.ON_REQUEST)
    call = gate.run(shell(workspace, "git status --short"))
    assert call.status == "succeeded" and call.sandbox.mode == "workspace-write"
    finish(gate)


def test_a_call_that_asks_anyway_is_asked_as_it_is_outside(workspace: Path) -> None:
    """`approval: required` is asked even in the read sandbox: the person sees that it needs `run`."""
    approver = ScriptedApprover(Decision.DENY)
    gate = make_gate(workspace, approver, policy=ApprovalPolicy.UNTRUSTED, profile=READ_ONLY)
    call = gate.run(shell(workspace, "git status", requests_escalation=True))
    assert call.status == "denied" and "run" in approver.asked[0].needs
    finish(gate)


def test_a_named_session_cannot_have_the_read_sandbox(workspace: Path) -> None:
    facts = call_facts(ToolKind.SHELL, "git diff", persistent_shell=True)
    assert not facts.read_sandbox and Capability.RUN in facts.needs
    approver = ScriptedApprover(Decision.DENY)
    gate = make_gate(workspace, approver, policy=ApprovalPolicy.UNTRUSTED, profile=READ_ONLY)
    call = gate.run(shell(workspace, "git diff", session="main"))
    assert call.status == "denied" and len(approver.asked) == 1
    finish(gate)
