"""The bubblewrap sandbox: golden command lines, real bwrap runs (writes, private /tmp, network), and
``classify_denial`` on real and hand-written output."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from codex_orchestrator.errors import SandboxError, SandboxUnavailable
from codex_orchestrator.sandbox import (
    EVIDENCE_MAX_CHARS,
    Denial,
    DenialKind,
    SandboxMode,
    SandboxSpec,
    SandboxState,
    classify_denial,
    host_tmp_entries,
    probe,
    require_available,
    wrap_argv,
)

# Generous bound on one sandboxed command; they normally take milliseconds.
RUN_TIMEOUT_S = 60.0
LISTENER_TIMEOUT_S = 30.0
# Bound on waiting for the kernel to reap a sandbox's leftover processes (normally already gone).
ORPHAN_GRACE_S = 10.0

WS = Path("/srv/ws")
RO = SandboxSpec(SandboxMode.READ_ONLY, WS)
RW = SandboxSpec(SandboxMode.WORKSPACE_WRITE, WS)
RW_NET = SandboxSpec(SandboxMode.WORKSPACE_WRITE, WS, network=True)


@pytest.fixture(scope="module")
def bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        pytest.fail(
            "bwrap (bubblewrap) is not installed: `make test` installs it, or apt-get install bubblewrap"
        )
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    # Under pytest's tmp_path, i.e. under /tmp: the case where mount order matters.
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A host directory outside the workspace and outside /tmp, so the sandbox shows it read-only."""
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="codex-sandbox-test-") as name:
        yield Path(name)


def run(argv: Sequence[str], spec: SandboxSpec, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` sandboxed; stderr is folded into stdout as it would be on a PTY.

    Like the gate, show the host's /tmp read-only: the interpreter running these tests may live there.
    """
    spec = replace(spec, readable_paths=spec.readable_paths or host_tmp_entries())
    return subprocess.run(
        wrap_argv(argv, spec, cwd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def sh(script: str, spec: SandboxSpec) -> subprocess.CompletedProcess[str]:
    return run(["sh", "-c", script], spec)


# --- wrap_argv: pure and stable ----------------------------------------------------------------------------

COMMON_HEAD = ("bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp")
COMMON_TAIL = ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--cap-drop", "ALL")


def test_mode_none_returns_argv_unchanged() -> None:
    spec = SandboxSpec(SandboxMode.NONE, Path("relative/is/fine/here"))
    assert wrap_argv(["echo", "hi"], spec) == ("echo", "hi")


def test_golden_read_only() -> None:
    assert wrap_argv(["ls", "-l"], RO) == (
        *COMMON_HEAD,
        # the workspace is bound read-only so a workspace under /tmp is not hidden by the private /tmp
        *("--ro-bind", "/srv/ws", "/srv/ws"),
        "--unshare-net",
        *COMMON_TAIL,
        *("--chdir", "/srv/ws", "--", "ls", "-l"),
    )


def test_golden_workspace_write() -> None:
    assert wrap_argv(["make"], RW) == (
        *COMMON_HEAD,
        *("--bind", "/srv/ws", "/srv/ws"),
        "--unshare-net",
        *COMMON_TAIL,
        *("--chdir", "/srv/ws", "--", "make"),
    )


def test_golden_workspace_write_with_network_extra_paths_and_cwd() -> None:
    spec = SandboxSpec(
        SandboxMode.WORKSPACE_WRITE,
        WS,
        network=True,
        writable_paths=(Path("/var/cache/pip/wheels"), Path("/var/cache/pip"), Path("/srv/ws/")),
        bwrap_path="/usr/bin/bwrap",
    )
    assert wrap_argv(["pip", "install", "."], spec, cwd=Path("/srv/ws/sub")) == (
        "/usr/bin/bwrap",
        *COMMON_HEAD[1:],
        # deduplicated, parents before children
        *("--bind", "/srv/ws", "/srv/ws"),
        *("--bind", "/var/cache/pip", "/var/cache/pip"),
        *("--bind", "/var/cache/pip/wheels", "/var/cache/pip/wheels"),
        *COMMON_TAIL,
        *("--chdir", "/srv/ws/sub", "--", "pip", "install", "."),
    )


def test_read_only_binds_only_explicit_writable_paths_writable() -> None:
    spec = SandboxSpec(SandboxMode.READ_ONLY, WS, writable_paths=(Path("/srv/ws/out"), Path("/var/cache/x")))
    argv = wrap_argv(["true"], spec)
    assert argv[len(COMMON_HEAD) : argv.index("--unshare-net")] == (
        *("--ro-bind", "/srv/ws", "/srv/ws"),
        *("--bind", "/srv/ws/out", "/srv/ws/out"),  # mounted after (on top of) the read-only workspace
        *("--bind", "/var/cache/x", "/var/cache/x"),
    )
    # an explicit writable path wins over the read-only workspace
    same = SandboxSpec(SandboxMode.READ_ONLY, WS, writable_paths=(WS,))
    assert wrap_argv(["true"], same)[len(COMMON_HEAD) : len(COMMON_HEAD) + 3] == (
        "--bind",
        "/srv/ws",
        "/srv/ws",
    )


def test_wrap_argv_is_stable_and_never_detaches_from_the_pty() -> None:
    first = wrap_argv(["true"], RW)
    assert first == wrap_argv(["true"], RW)
    assert "--new-session" not in first


def test_tmpfs_is_mounted_before_a_workspace_under_tmp() -> None:
    argv = wrap_argv(["true"], SandboxSpec(SandboxMode.WORKSPACE_WRITE, Path("/tmp/pytest-0/ws")))
    assert argv.index("--tmpfs") < argv.index("--bind")


def test_relative_paths_and_empty_argv_are_refused() -> None:
    with pytest.raises(SandboxError, match="workspace must be an absolute path"):
        wrap_argv(["true"], SandboxSpec(SandboxMode.WORKSPACE_WRITE, Path("ws")), cwd=Path("/"))
    with pytest.raises(SandboxError, match="cwd must be an absolute path"):
        wrap_argv(["true"], RO, cwd=Path("sub"))
    with pytest.raises(SandboxError, match="empty command line"):
        wrap_argv([], RO)


def test_state_vocabulary_is_closed() -> None:
    assert [s.value for s in SandboxState] == ["none", "sandboxed", "escalated", "denied", "unavailable"]


# --- probe / require_available -------------------------------------------------------------------------


@pytest.mark.sandbox
def test_probe_reports_available_with_a_version(bwrap: str) -> None:
    result = probe()
    assert result.available, result.detail
    assert result.version is not None
    assert result.version[0].isdigit()
    assert probe() is result  # cached
    require_available(RW)


def test_probe_explains_a_missing_binary() -> None:
    result = probe("/nonexistent/bwrap")
    assert not result.available
    assert "not found" in result.detail
    with pytest.raises(SandboxUnavailable, match="not found"):
        require_available(SandboxSpec(SandboxMode.READ_ONLY, WS, bwrap_path="/nonexistent/bwrap"))
    # mode none needs no bwrap at all
    require_available(SandboxSpec(SandboxMode.NONE, WS, bwrap_path="/nonexistent/bwrap"))


def test_probe_includes_bwrap_stderr_when_namespaces_fail(tmp_path: Path) -> None:
    # A stand-in for a bwrap on a kernel with user namespaces disabled: same exit code, same message.
    fake = tmp_path / "bwrap"
    fake.write_text(
        '#!/bin/sh\n[ "$1" = --version ] && { echo "bubblewrap 0.0.1"; exit 0; }\n'
        'echo "bwrap: No permissions to creating new namespace" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    result = probe(str(fake))
    assert not result.available
    assert result.version == "0.0.1"
    assert "No permissions to creating new namespace" in result.detail
    assert "user namespaces" in result.detail


# --- real bwrap: writes ----------------------------------------------------------------------------------


@pytest.mark.sandbox
def test_workspace_write_lands_on_the_host(bwrap: str, workspace: Path) -> None:
    done = sh(
        "echo hello > out.txt && mkdir -p sub && touch sub/f",
        SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace),
    )
    assert done.returncode == 0, done.stdout
    assert (workspace / "out.txt").read_text() == "hello\n"
    assert (workspace / "sub" / "f").exists()


@pytest.mark.sandbox
def test_extra_writable_path_is_writable(bwrap: str, workspace: Path, outside_tmp: Path) -> None:
    spec = SandboxSpec(SandboxMode.READ_ONLY, workspace, writable_paths=(outside_tmp,))
    done = sh(f"touch {outside_tmp}/cache-entry", spec)
    assert done.returncode == 0, done.stdout
    assert (outside_tmp / "cache-entry").exists()


@pytest.mark.sandbox
@pytest.mark.parametrize("target", ["outside", "/usr/local/codex-sandbox-probe"])
def test_write_outside_the_workspace_is_denied(
    bwrap: str, workspace: Path, outside_tmp: Path, target: str
) -> None:
    path = outside_tmp / "f" if target == "outside" else Path(target)
    spec = SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace)
    done = sh(f"touch {path}", spec)
    assert done.returncode != 0
    assert not path.exists()
    denial = classify_denial(done.returncode, done.stdout, spec)
    assert denial is not None, done.stdout
    assert denial.kind == "write"
    assert str(path) in denial.evidence


@pytest.mark.sandbox
def test_python_write_outside_is_classified(bwrap: str, workspace: Path, outside_tmp: Path) -> None:
    spec = SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace)
    done = run([sys.executable, "-c", f"open({str(outside_tmp / 'py')!r}, 'w')"], spec)
    assert done.returncode != 0
    assert classify_denial(done.returncode, done.stdout, spec) == Denial(
        DenialKind.WRITE, f"OSError: [Errno 30] Read-only file system: '{outside_tmp / 'py'}'"
    )


@pytest.mark.sandbox
def test_sibling_under_tmp_is_visible_but_read_only(bwrap: str, workspace: Path) -> None:
    # A host directory under /tmp but outside the workspace is shown read-only over the private /tmp:
    # the write fails with EROFS, is recognised as a sandbox denial, and the host directory stays untouched.
    sibling = workspace.parent / "sibling"
    sibling.mkdir()
    spec = SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace)
    done = sh(f"touch {sibling}/f", spec)
    assert done.returncode != 0
    assert "Read-only file system" in done.stdout
    assert list(sibling.iterdir()) == []
    spec = replace(spec, readable_paths=host_tmp_entries())
    denial = classify_denial(done.returncode, done.stdout, spec)
    assert denial is not None and denial.kind == "write"


@pytest.mark.sandbox
def test_read_only_blocks_workspace_writes(bwrap: str, workspace: Path) -> None:
    spec = SandboxSpec(SandboxMode.READ_ONLY, workspace)
    done = sh("echo x > out.txt", spec)
    assert done.returncode != 0
    assert not (workspace / "out.txt").exists()
    denial = classify_denial(done.returncode, done.stdout, spec)
    assert denial is not None and denial.kind == "write", done.stdout
    # ...while reads still work and /tmp stays writable
    (workspace / "in.txt").write_text("data\n")
    done = sh("cat in.txt && echo scratch > /tmp/scratch && cat /tmp/scratch", spec)
    assert (done.returncode, done.stdout) == (0, "data\nscratch\n")


@pytest.mark.sandbox
def test_tmp_is_private(bwrap: str, workspace: Path) -> None:
    host_file = Path("/tmp") / f"codex-sandbox-private-{workspace.parent.name}"
    assert not host_file.exists()
    done = sh(
        f"echo secret > {host_file} && cat {host_file}", SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace)
    )
    assert (done.returncode, done.stdout) == (0, "secret\n")
    assert not host_file.exists()


@pytest.mark.sandbox
def test_workspace_under_tmp_stays_visible_and_is_the_cwd(bwrap: str, workspace: Path) -> None:
    assert str(workspace).startswith("/tmp/")
    (workspace / "seen.txt").write_text("from host\n")
    done = sh(
        "pwd && cat seen.txt && echo back > back.txt", SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace)
    )
    assert (done.returncode, done.stdout) == (0, f"{workspace}\nfrom host\n")
    assert (workspace / "back.txt").read_text() == "back\n"


def _pids_with_arg(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "cmdline").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:  # the process exited while we looked
            continue
    return pids


@pytest.mark.sandbox
def test_background_children_die_with_the_command(bwrap: str, workspace: Path) -> None:
    # bwrap is init of the command's pid namespace: when the command exits, the kernel kills the rest.
    marker = f"codex-sandbox-orphan-{workspace.parent.name}"
    sleeper = f"{sys.executable} -c 'import time; time.sleep(3600)' {marker} &"
    done = sh(f"{sleeper} echo started", SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace))
    assert (done.returncode, done.stdout) == (0, "started\n")
    deadline = time.monotonic() + ORPHAN_GRACE_S
    while _pids_with_arg(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    leftovers = _pids_with_arg(marker)
    for pid in leftovers:  # never leave a stray behind, even when failing
        os.kill(pid, signal.SIGKILL)
    assert leftovers == []


# --- real bwrap: network -----------------------------------------------------------------------------------

CONNECT_SCRIPT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20).close()
except OSError as exc:
    print(f"connect failed: {exc}")
    sys.exit(1)
print("connected")
"""


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(LISTENER_TIMEOUT_S)
        yield server


@pytest.mark.sandbox
def test_loopback_listener_is_unreachable_without_network(
    bwrap: str, workspace: Path, listener: socket.socket
) -> None:
    spec = SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace)
    port = str(listener.getsockname()[1])
    done = run([sys.executable, "-c", CONNECT_SCRIPT, "127.0.0.1", port], spec)
    assert done.returncode == 1
    assert "connected\n" not in done.stdout
    assert classify_denial(done.returncode, done.stdout, spec) == Denial(
        DenialKind.NETWORK, "connect failed: [Errno 111] Connection refused"
    )


@pytest.mark.sandbox
def test_loopback_listener_is_reached_with_network(
    bwrap: str, workspace: Path, listener: socket.socket
) -> None:
    spec = SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace, network=True)
    port = str(listener.getsockname()[1])
    done = run([sys.executable, "-c", CONNECT_SCRIPT, "127.0.0.1", port], spec)
    assert (done.returncode, done.stdout) == (0, "connected\n")
    conn, _ = listener.accept()  # the connection really reached the host's listener
    conn.close()
    assert classify_denial(done.returncode, done.stdout, spec) is None


@pytest.mark.sandbox
def test_remote_address_and_dns_fail_without_network(bwrap: str, workspace: Path) -> None:
    spec = SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace)
    # 192.0.2.1 is TEST-NET-1; the empty namespace has no route to it (or anywhere).
    done = run([sys.executable, "-c", CONNECT_SCRIPT, "192.0.2.1", "80"], spec)
    denial = classify_denial(done.returncode, done.stdout, spec)
    assert denial == Denial(DenialKind.NETWORK, "connect failed: [Errno 101] Network is unreachable")

    done = run([sys.executable, "-c", "import socket; socket.getaddrinfo('example.com', 443)"], spec)
    assert done.returncode != 0
    denial = classify_denial(done.returncode, done.stdout, spec)
    assert denial is not None and denial.kind == "network", done.stdout
    assert denial.evidence.startswith("socket.gaierror:")


# --- classify_denial: unit cases ---------------------------------------------------------------------------

WRITE_POSITIVES = [
    # git hides EROFS when the object store of a push target is a read-only bind
    "error: remote unpack failed: unable to create temporary object directory",
    "touch: cannot touch '/usr/local/x': Read-only file system",
    "mkdir: cannot create directory '/opt/new': Read-only file system",
    "sh: 1: cannot create /etc/motd: Read-only file system",
    "OSError: [Errno 30] Read-only file system: '/home/u/.cache/pip'",
    "Error: EROFS: read-only file system, open '/usr/lib/node_modules/x'",
    "open /root/.config/go/env: read-only file system",
    "error: could not lock config file /root/.gitconfig: Read-only file system",
    "Read-only file system (os error 30)",  # no path named: still the sandbox's signature
    "mv: cannot move '/srv/ws/a' to '/usr/b': Read-only file system",  # one path outside suffices
    "sh: 1: cannot create /etc/motd: Permission denied",
    "touch: cannot touch '/opt/x': Permission denied",
    "mkdir: cannot create directory \u2018/opt/x\u2019: Permission denied",  # GNU typographic quotes
]

WRITE_NEGATIVES = [
    "cat: /etc/shadow: Permission denied",  # a read, not a write
    "bash: ./run.sh: Permission denied",  # not executable; relative path
    "touch: cannot touch '/srv/ws/locked': Permission denied",  # inside the workspace: an ordinary permission
    "touch: cannot touch '/tmp/x': Permission denied",  # /tmp is writable in the sandbox
    "touch: cannot touch 'rel/x': Permission denied",  # path not determinable
    "cp: cannot create regular file '/srv/ws/x': Read-only file system",  # every path writable: host RO fs
    "touch: cannot touch '/tmp/a/b': No such file or directory",  # documented blind spot
    "all 12 tests passed",
    "",
]

NETWORK_POSITIVES = [
    "OSError: [Errno 101] Network is unreachable",
    "socket.gaierror: [Errno -3] Temporary failure in name resolution",
    "curl: (6) Could not resolve host: example.com",
    "fatal: unable to access 'https://github.com/x/y/': Could not resolve host: github.com",
    "ssh: Could not resolve hostname example.com: Name or service not known",
    "socket.gaierror: [Errno -5] No address associated with hostname",
    "Error: getaddrinfo ENOTFOUND registry.npmjs.org",
    "dial tcp 127.0.0.1:5432: connect: connection refused",
    "ConnectionRefusedError: [Errno 111] Connection refused",
]


@pytest.mark.parametrize("line", WRITE_POSITIVES)
def test_write_positives(line: str) -> None:
    output = f"building...\r\n{line}\r\nmake: *** [all] Error 1\r\n"
    assert classify_denial(1, output, RW) == Denial(DenialKind.WRITE, line)


@pytest.mark.parametrize("line", WRITE_NEGATIVES)
def test_write_negatives(line: str) -> None:
    assert classify_denial(1, line, RW) is None


def test_read_only_mode_counts_the_workspace_as_outside() -> None:
    line = "touch: cannot touch '/srv/ws/x': Read-only file system"
    assert classify_denial(1, line, RW) is None
    assert classify_denial(1, line, RO) == Denial(DenialKind.WRITE, line)


def test_extra_writable_paths_count_as_inside() -> None:
    spec = SandboxSpec(SandboxMode.WORKSPACE_WRITE, WS, writable_paths=(Path("/var/cache/pip"),))
    line = "touch: cannot touch '/var/cache/pip/x': Permission denied"
    assert classify_denial(1, line, spec) is None
    assert classify_denial(1, line, RW) == Denial(DenialKind.WRITE, line)


@pytest.mark.parametrize("line", NETWORK_POSITIVES)
def test_network_positives(line: str) -> None:
    assert classify_denial(7, f"fetching\n{line}\n", RW) == Denial(DenialKind.NETWORK, line)
    assert classify_denial(7, line, RO) == Denial(DenialKind.NETWORK, line)


@pytest.mark.parametrize("line", NETWORK_POSITIVES)
def test_network_granted_means_no_network_denial(line: str) -> None:
    assert classify_denial(7, line, RW_NET) is None


def test_success_and_mode_none_never_deny() -> None:
    line = "touch: cannot touch '/usr/x': Read-only file system"
    assert classify_denial(0, line, RW) is None
    assert classify_denial(1, line, SandboxSpec(SandboxMode.NONE, WS)) is None
    # an unknown exit code (still running, killed) is judged on the evidence alone
    assert classify_denial(None, line, RW) == Denial(DenialKind.WRITE, line)


def test_first_evidence_wins_and_is_bounded() -> None:
    output = "curl: (6) Could not resolve host: a\ntouch: cannot touch '/usr/x': Read-only file system\n"
    denial = classify_denial(1, output, RW)
    assert denial == Denial(DenialKind.NETWORK, "curl: (6) Could not resolve host: a")
    long_line = "OSError: [Errno 30] Read-only file system: '/usr/" + "x" * 2000 + "'"
    denial = classify_denial(1, long_line, RW)
    assert denial is not None and len(denial.evidence) == EVIDENCE_MAX_CHARS


def test_host_tmp_stays_visible_read_only_under_the_private_tmp(bwrap: str, workspace: Path) -> None:
    """A toolchain or checkout living in /tmp must keep working inside the sandbox; writes stay private."""
    host_dir = Path(tempfile.mkdtemp(prefix="codex-sandbox-visible-", dir="/tmp"))
    try:
        (host_dir / "tool.sh").write_text("echo tool-ran\n")
        spec = SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace, readable_paths=host_tmp_entries())
        assert host_dir in spec.readable_paths
        done = run(
            ["sh", "-c", f"sh {host_dir}/tool.sh; touch {host_dir}/new 2>&1; touch /tmp/private-file"], spec
        )
        assert "tool-ran" in done.stdout
        assert "Read-only file system" in done.stdout
        assert not (host_dir / "new").exists() and not Path("/tmp/private-file").exists()
        denial = classify_denial(1, done.stdout, spec)
        assert denial is not None and denial.kind is DenialKind.WRITE
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)


def test_host_tmp_entries_are_symlinked_except_those_holding_a_bind() -> None:
    spec = SandboxSpec(
        SandboxMode.WORKSPACE_WRITE,
        Path("/tmp/b/ws"),
        readable_paths=(Path("/tmp/a"), Path("/tmp/b"), Path("/tmp/c")),
    )
    argv = wrap_argv(["true"], spec)
    assert argv[10:13] == ("--ro-bind", "/tmp", "/tmp/.host-tmp")
    assert argv[13:16] == ("--symlink", "/tmp/.host-tmp/a", "/tmp/a")
    assert argv[16:19] == ("--symlink", "/tmp/.host-tmp/c", "/tmp/c")
    assert argv[19:22] == ("--ro-bind-try", "/tmp/b", "/tmp/b")  # a real directory: the workspace is in it
    assert argv[22:25] == ("--bind", "/tmp/b/ws", "/tmp/b/ws")


CAP_PROBE = (
    "grep '^CapEff:' /proc/self/status; mount -o remount,rw / 2>/dev/null && echo REMOUNTED; "
    "touch {target} 2>/dev/null && echo WROTE"
)


def capability_probe_target() -> Path:
    return Path("/usr") / f"codex-cap-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@pytest.mark.sandbox
def test_a_command_has_no_capabilities_and_cannot_remount_the_system(bwrap: str, workspace: Path) -> None:
    # Run as root, bwrap leaves the command every capability unless told otherwise: before --cap-drop ALL,
    # `mount -o remount,rw /` succeeded and the command wrote to the host's /usr.
    target = capability_probe_target()
    try:
        done = sh(CAP_PROBE.format(target=target), SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace))
        assert "CapEff:\t0000000000000000" in done.stdout, done.stdout
        assert "REMOUNTED" not in done.stdout and "WROTE" not in done.stdout
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)
