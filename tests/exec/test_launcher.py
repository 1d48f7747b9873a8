"""The kept-alive sandbox: a launcher inside one real bwrap runs each call on a fresh PTY in a pid namespace
of its own. Same guarantees as a bwrap per call (read-only system, writable workspace, no network, the tree
ended), calls isolated from each other, the pool's lifetime rules, and the gate's use of it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from codex_orchestrator.approvals import Decision
from codex_orchestrator.exec.backend import SpawnRequest
from codex_orchestrator.exec.errors import SpawnError
from codex_orchestrator.exec.launcher import (
    POOL,
    LauncherError,
    LauncherProcess,
    SandboxLauncher,
    SandboxPool,
    start_launcher,
)
from codex_orchestrator.exec.session import ExecSessionManager
from codex_orchestrator.sandbox import SandboxMode, SandboxSpec, probe
from tests.test_gate import ScriptedApprover, finish, make_gate, shell

pytestmark = pytest.mark.skipif(not probe().available, reason="bubblewrap cannot sandbox here")

WAIT_S = 30.0


@pytest.fixture(scope="module")
def workspace_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("launcher-ws").resolve()


@pytest.fixture(scope="module")
def launcher(workspace_dir: Path) -> Iterator[SandboxLauncher]:
    """One sandbox for the module's calls, as a run would keep it."""
    live = start_launcher(SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace_dir))
    yield live
    live.close()


def run(
    launcher: SandboxLauncher, script: str, cwd: Path | None = None, tmp_entries: tuple[Path, ...] = ()
) -> tuple[int | None, str]:
    request = SpawnRequest(argv=("/bin/sh", "-c", script), cwd=str(cwd or launcher.spec.workspace))
    child = launcher.spawn(request, tmp_entries)
    try:
        output = bytearray()
        while data := child.read(WAIT_S):
            output.extend(data)
        return child.wait(WAIT_S), output.decode()
    finally:
        child.close()


def unique_sleep() -> str:
    """A ``sleep`` argument no other process on the host has in its command line: 600.<random digits>."""
    return f"600.{uuid.uuid4().int % 10**12:012d}"


def host_pids_running(marker: str) -> list[int]:
    """Host processes whose command line holds ``marker``."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as cmdline:
                    if marker.encode() in cmdline.read():
                        found.append(int(name))
            except OSError:
                continue
    return found


def wait_until(condition: object, what: str) -> None:
    """Poll a condition the kernel settles asynchronously (a reap); a bound on a hang, not a timing claim."""
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {WAIT_S}s")
        time.sleep(0.01)


def test_a_launched_call_has_the_sandboxs_guarantees(launcher: SandboxLauncher, workspace_dir: Path) -> None:
    code, out = run(
        launcher,
        "test -t 1 && echo tty; touch /etc/co-launcher-probe; echo made > made.txt; cat made.txt; "
        "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; exit 7",
    )
    assert code == 7
    assert "tty" in out and "Read-only file system" in out
    assert (workspace_dir / "made.txt").read_text() == "made\n"
    assert out.split("made\r\n")[1].split() == ["lo"]  # an empty network namespace
    assert not Path("/etc/co-launcher-probe").exists()


def test_a_call_cannot_see_or_signal_another_calls_processes(launcher: SandboxLauncher) -> None:
    marker = unique_sleep()
    victim = launcher.spawn(SpawnRequest(argv=("/bin/sh", "-c", f"echo up; exec sleep {marker}")))
    try:
        assert victim.read(WAIT_S) is not None
        # The attacker kills everything it is able to, and lists every process it can see.
        code, out = run(
            launcher, f"kill -KILL -1; ps -eo pid,args; grep -l {marker} /proc/[0-9]*/cmdline; true"
        )
        assert code == 0
        assert marker not in out.replace(f"grep -l {marker}", "")
        assert victim.poll() is None and host_pids_running(marker)
        # All it sees is its own namespace: its init, its shell and ps itself.
        visible = [line.split() for line in out.splitlines()]
        assert len([fields for fields in visible if fields and fields[0].isdigit()]) == 3
    finally:
        assert victim.terminate_tree(1.0) is not None
        victim.close()


def test_the_tree_ends_with_the_call_and_on_terminate(launcher: SandboxLauncher) -> None:
    marker = unique_sleep()
    # A background process left behind by a command that exits dies with it, as under a bwrap of its own.
    code, out = run(launcher, f"(exec sleep {marker}) & echo started")
    assert code == 0 and "started" in out
    wait_until(lambda: not host_pids_running(marker), "gone after its command exited")
    # A command that ignores SIGTERM is killed after the grace, with everything it started.
    stubborn = launcher.spawn(
        SpawnRequest(argv=("/bin/sh", "-c", f"trap '' TERM HUP; (exec sleep {marker}) & echo up; wait"))
    )
    try:
        assert stubborn.read(WAIT_S)
        wait_until(lambda: host_pids_running(marker), "started")
        assert stubborn.terminate_tree(0.2) == 128 + signal.SIGKILL
        wait_until(lambda: not host_pids_running(marker), "gone after terminate_tree")
    finally:
        stubborn.close()


def test_signal_reaches_the_commands_group_and_the_pty_works(launcher: SandboxLauncher) -> None:
    manager = ExecSessionManager()
    from codex_orchestrator.shell_attempt import LaunchedBackend

    with manager:
        session = manager.open(
            LaunchedBackend(launcher),
            SpawnRequest(
                argv=("/bin/sh", "-c", "trap 'echo got-int; exit 3' INT; echo ready; read x; echo $x")
            ),
        )
        seen = bytearray()
        session.subscribe(lambda event: seen.extend(event.data))
        wait_until(lambda: b"ready" in session.transcript.head, "ready")
        session.signal(signal.SIGINT)
        assert session.wait(WAIT_S) == 3
        assert b"got-int" in session.transcript.head


def test_spawn_failures_read_as_the_local_backends(launcher: SandboxLauncher, workspace_dir: Path) -> None:
    with pytest.raises(SpawnError, match="No such file or directory: 'co-no-such-program'"):
        launcher.spawn(SpawnRequest(argv=("co-no-such-program",)))
    with pytest.raises(SpawnError, match="working directory"):
        launcher.spawn(SpawnRequest(argv=("true",), cwd=str(workspace_dir / "missing")))
    assert run(launcher, "echo still-serving")[1].strip() == "still-serving"


def test_a_host_tmp_entry_made_after_the_sandbox_started_is_shown_read_only(
    launcher: SandboxLauncher,
) -> None:
    late = Path(tempfile.mkdtemp(prefix="co-late-", dir="/tmp"))
    try:
        (late / "note").write_text("seen\n")
        code, out = run(launcher, f"cat {late}/note; touch {late}/x", tmp_entries=(late,))
        assert code != 0 and "seen" in out and "Read-only file system" in out
        assert not (late / "x").exists()
    finally:
        shutil.rmtree(late, ignore_errors=True)


def test_pool_keys_lifetime_and_close(workspace_dir: Path) -> None:
    pool = SandboxPool()
    spec = SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace_dir)
    assert pool.launcher_for("run-a", "local", spec) is None  # a run's first call: a bwrap of its own
    first = pool.launcher_for("run-a", "local", spec)
    assert first is not None and pool.launcher_for("run-a", "local", spec) is first
    # A different grant is a different sandbox; another run never shares this one.
    pool.launcher_for("run-a", "local", SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace_dir, network=True))
    networked = pool.launcher_for(
        "run-a", "local", SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace_dir, network=True)
    )
    assert networked is not None and networked is not first
    assert pool.launcher_for("run-b", "local", spec) is None
    bwraps = [first._popen, networked._popen]  # the sandbox's own process
    pool.close_run("run-a")
    assert all(p.poll() is not None for p in bwraps) and not first.alive
    assert pool.launcher_for("run-a", "local", spec) is None  # starts over


def test_the_launcher_dies_with_its_parent(workspace_dir: Path, tmp_path: Path) -> None:
    marker = unique_sleep()
    script = (
        "import sys, pathlib\n"
        "from codex_orchestrator.exec.launcher import start_launcher\n"
        "from codex_orchestrator.exec.backend import SpawnRequest\n"
        "from codex_orchestrator.sandbox import SandboxMode, SandboxSpec\n"
        f"l = start_launcher(SandboxSpec(SandboxMode.WORKSPACE_WRITE, pathlib.Path({str(workspace_dir)!r})))\n"
        f"c = l.spawn(SpawnRequest(argv=('/bin/sh', '-c', 'echo up; exec sleep {marker}')))\n"
        "c.read(30); print('spawned', flush=True); sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert parent.stdout is not None and parent.stdout.readline().strip() == b"spawned"
    assert host_pids_running(marker)
    parent.kill()
    parent.wait(WAIT_S)
    wait_until(lambda: not host_pids_running(marker), "gone after the orchestrator died")


def test_the_gate_reuses_the_runs_sandbox_but_never_for_an_escalated_call(workspace: Path) -> None:
    outside = Path("/var/tmp") / f"co-launch-escalate-{uuid.uuid4().hex}"
    gate = make_gate(workspace, ScriptedApprover(Decision.APPROVE))
    host_pid_ns = os.readlink("/proc/self/ns/pid")
    try:
        seen = []
        for _ in range(3):
            call = gate.run(shell(workspace, "readlink /proc/self/ns/pid; readlink /proc/self/ns/net"))
            assert call.status == "succeeded" and call.sandbox.state == "sandboxed"
            seen.append(call.output_tail.split())
        assert all(host_pid_ns not in s for s in seen)
        # The next two calls shared the run's kept sandbox (one network namespace), each in a pid namespace of
        # its own. (The first call's one-off bwrap is gone by then, and the kernel may give its namespace
        # number to the kept sandbox's: comparing with it failed under load.)
        assert seen[1][1] == seen[2][1]
        assert len({s[0] for s in seen}) == 3
        escalated = gate.run(shell(workspace, f"touch {outside} && readlink /proc/self/ns/pid"))
        assert escalated.status == "succeeded" and escalated.sandbox.state == "escalated" and outside.exists()
        assert [a.sandboxed for a in escalated.attempts] == [True, False]
        assert host_pid_ns in escalated.output_tail  # the retry ran on the host, not in the kept sandbox
        finish(gate)
    finally:
        POOL.close_run(gate.recorder.run_id)
        outside.unlink(missing_ok=True)


def test_launcher_process_is_a_child_process(launcher: SandboxLauncher) -> None:
    child = launcher.spawn(SpawnRequest(argv=("/bin/sh", "-c", "echo $$; exit 0")))
    assert isinstance(child, LauncherProcess)
    try:
        assert child.pid is not None and child.pid < 10  # its pid inside the sandbox
        assert child.wait(WAIT_S) == 0
    finally:
        child.close()


def test_a_named_shell_outlives_a_change_of_the_hosts_tmp(workspace: Path) -> None:
    """Another process adding a /tmp entry between two calls must not cost the step its shell."""
    gate = make_gate(workspace, ScriptedApprover())
    first = gate.run(shell(workspace, "cd tests && export GREETING=hello", session="dev"))
    appeared = Path(tempfile.mkdtemp(prefix="0000-co-", dir="/tmp"))  # sorts first: within the shown entries
    try:
        second = gate.run(
            shell(workspace, 'echo "$GREETING from $(basename "$PWD")"', step="again", session="dev")
        )
    finally:
        shutil.rmtree(appeared)
    assert first.session_id == second.session_id and "hello from tests" in second.output_tail
    finish(gate)


def test_a_kept_sandbox_call_has_no_capabilities(launcher: SandboxLauncher) -> None:
    # The launcher keeps CAP_SYS_ADMIN to give each call its own pid namespace; the call itself has none,
    # as under `bwrap --cap-drop ALL`, so as root it cannot remount the system writable.
    from tests.test_sandbox import CAP_PROBE, capability_probe_target

    target = capability_probe_target()
    try:
        _code, out = run(launcher, CAP_PROBE.format(target=target))
        assert "CapEff:\t0000000000000000" in out, out
        assert "REMOUNTED" not in out and "WROTE" not in out
        assert not target.exists()
        _code, out = run(launcher, "grep -E '^(CapBnd|NoNewPrivs):' /proc/self/status")
        assert "CapBnd:\t0000000000000000" in out and "NoNewPrivs:\t1" in out, out
    finally:
        target.unlink(missing_ok=True)


def test_calls_at_once_each_get_a_namespace_of_their_own(launcher: SandboxLauncher) -> None:
    """More calls at once than there are prepared inits: a spawn that finds none asks for one of its own
    (it never waits for a running call to end), from any thread; each call is alone in its namespace."""
    count = 8
    barrier = threading.Barrier(count)
    children: list[LauncherProcess] = []
    failures: list[BaseException] = []

    def start() -> None:
        barrier.wait(WAIT_S)
        try:
            child = launcher.spawn(
                SpawnRequest(
                    argv=("/bin/sh", "-c", "readlink /proc/self/ns/pid; ls -d /proc/[0-9]* | wc -l; read x")
                )
            )
        except BaseException as exc:
            failures.append(exc)
            return
        with lock:
            children.append(child)

    lock = threading.Lock()
    threads = [threading.Thread(target=start) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    try:
        assert not failures and len(children) == count
        seen = []
        for child in children:  # every call is running (blocked in `read`) while the others are
            output = bytearray()
            while output.count(b"\n") < 2:
                data = child.read(WAIT_S)
                assert data, f"call ended early: {bytes(output)!r}"
                output.extend(data)
            namespace, visible = output.decode().split()[:2]
            seen.append(namespace)
            assert int(visible) <= 4, output  # its init, its shell, and ls (and the pipe's wc)
            assert child.poll() is None
        assert len(set(seen)) == count
        for child in children:
            child.write(b"done\n")
        assert [child.wait(WAIT_S) for child in children] == [0] * count
    finally:
        for child in children:
            child.close()


def test_a_failed_spawn_uses_up_its_namespace(launcher: SandboxLauncher, workspace_dir: Path) -> None:
    """A prepared namespace serves one call, even one that could not start: the next call gets a fresh one."""
    first = launcher.spawn(SpawnRequest(argv=("/bin/sh", "-c", "readlink /proc/self/ns/pid; read x")))
    try:
        before = first.read(WAIT_S)
        with pytest.raises(SpawnError, match="working directory"):
            launcher.spawn(SpawnRequest(argv=("true",), cwd=str(workspace_dir / "missing")))
        code, out = run(launcher, "readlink /proc/self/ns/pid; pwd; ls -d /proc/[0-9]* | wc -l")
        assert code == 0 and before is not None
        namespace, cwd, visible = out.split()
        assert namespace not in before.decode() and cwd == str(workspace_dir) and int(visible) <= 4
    finally:
        first.write(b"x\n")
        assert first.wait(WAIT_S) == 0
        first.close()


def test_a_launched_call_gets_exactly_the_environment_and_terminal_asked_for(
    launcher: SandboxLauncher, workspace_dir: Path
) -> None:
    # The program is looked up on the request's PATH, not the sandbox's; the environment is the one the
    # local backend gives the same request, nothing more (the init's own settings never leak into it).
    bin_dir = workspace_dir / f"bin-{uuid.uuid4().hex[:8]}"
    bin_dir.mkdir()
    (bin_dir / "co-show-env").write_text("#!/bin/sh\nenv | sort\n")
    (bin_dir / "co-show-env").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CO_ONLY_HERE": "yes"}
    request = SpawnRequest(argv=("co-show-env",), env=env, cwd=str(bin_dir), rows=33, cols=101)
    try:
        from codex_orchestrator.exec.local import LocalPtyBackend

        outputs = []
        for spawn in (LocalPtyBackend().spawn, launcher.spawn):
            child = spawn(request)
            output = bytearray()
            while data := child.read(WAIT_S):
                output.extend(data)
            assert child.wait(WAIT_S) == 0
            child.close()
            outputs.append(output.decode().splitlines())
        local, launched = outputs
        assert "CO_ONLY_HERE=yes" in launched and f"PATH={env['PATH']}" in launched
        assert launched == local
    finally:
        shutil.rmtree(bin_dir)
    # The PTY has the size asked for and is the call's controlling terminal: ^C on it interrupts the command,
    # and the signal that ended it is reported as the local backend reports it (128 + signal).
    child = launcher.spawn(
        SpawnRequest(
            argv=("/bin/sh", "-c", "stty size; exec 3</dev/tty && echo ctty; exec sleep 600"),
            rows=33,
            cols=101,
        )
    )
    try:
        output = bytearray()
        while b"ctty" not in output:
            data = child.read(WAIT_S)
            assert data, bytes(output)
            output.extend(data)
        assert b"33 101" in output
        child.write(b"\x03")
        assert child.wait(WAIT_S) == 128 + signal.SIGINT
    finally:
        child.close()


REPO = Path(__file__).resolve().parents[2]
# Runs the kept sandbox as a run's second call would, from whatever interpreter and checkout run this script.
KEPT_SANDBOX_SCRIPT = """
import pathlib, sys
from codex_orchestrator.exec.backend import SpawnRequest
from codex_orchestrator.exec.launcher import SandboxPool
from codex_orchestrator.sandbox import SandboxMode, SandboxSpec
pool = SandboxPool()
spec = SandboxSpec(SandboxMode.WORKSPACE_WRITE, pathlib.Path(sys.argv[1]))
pool.launcher_for("run", "local", spec)  # the first call: a bwrap of its own
launcher = pool.launcher_for("run", "local", spec)
if launcher is None:
    sys.exit("no kept sandbox: " + str(pool.start_failure("run", "local", spec)))
child = launcher.spawn(SpawnRequest(argv=("/bin/sh", "-c", "echo kept-$((6 * 7))")))
out = b""
while data := child.read(30):
    out += data
print(child.wait(30), out.decode().strip(), flush=True)
child.close()
pool.close_all()
"""


def test_the_kept_sandbox_runs_from_a_checkout_and_interpreter_under_tmp(workspace_dir: Path) -> None:
    """A clone in /tmp with its virtualenv there (as `make test` in a clone under /tmp has it): the private
    /tmp of the sandbox must not hide the launcher's interpreter or script from bwrap."""
    checkout = Path(tempfile.mkdtemp(prefix="co-checkout-", dir="/tmp"))
    try:
        shutil.copytree(
            REPO / "codex_orchestrator",
            checkout / "codex_orchestrator",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(checkout / ".venv")], check=True)
        python = checkout / ".venv" / "bin" / "python"
        done = subprocess.run(
            [str(python), "-c", KEPT_SANDBOX_SCRIPT, str(workspace_dir)],
            capture_output=True,
            text=True,
            cwd=checkout,
            env={**os.environ, "PYTHONPATH": str(checkout)},
            timeout=120,
            check=False,
        )
        assert (done.returncode, done.stdout.strip()) == (0, "0 kept-42"), done.stderr
    finally:
        shutil.rmtree(checkout, ignore_errors=True)


def test_a_launcher_that_cannot_start_says_what_bwrap_said(
    workspace_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = Path("/var/tmp") / f"co-missing-{uuid.uuid4().hex}"
    broken = SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace_dir, writable_paths=(missing,))
    with pytest.raises(LauncherError, match=f"bwrap: Can't find source path {missing}"):
        start_launcher(broken)
    pool = SandboxPool()
    assert pool.launcher_for("run-x", "local", broken) is None
    with caplog.at_level("WARNING", logger="codex_orchestrator.exec.launcher"):
        assert pool.launcher_for("run-x", "local", broken) is None
    assert f"Can't find source path {missing}" in caplog.text
    assert f"Can't find source path {missing}" in (pool.start_failure("run-x", "local", broken) or "")
    assert pool.kept("run-x")[0] == 0


def test_a_run_whose_kept_sandbox_fails_records_why_and_goes_on(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The run's calls fall back to a bwrap each; the call that found the kept sandbox unable to start says
    so in its record, in bwrap's words, and the log says it too."""
    import codex_orchestrator.shell_attempt as shell_attempt

    missing = Path("/var/tmp") / f"co-missing-{uuid.uuid4().hex}"
    # A real bwrap that refuses the launcher's sandbox (a bind source that does not exist), nothing faked.
    pool = SandboxPool(start=lambda spec: start_launcher(replace(spec, writable_paths=(missing,))))
    monkeypatch.setattr(shell_attempt, "POOL", pool)
    gate = make_gate(workspace, ScriptedApprover())
    with caplog.at_level("WARNING", logger="codex_orchestrator.exec.launcher"):
        calls = [gate.run(shell(workspace, "echo ran", step=f"s{i}")) for i in range(2)]
    assert [c.status for c in calls] == ["succeeded", "succeeded"]
    assert [c.sandbox.state for c in calls] == ["sandboxed", "sandboxed"]
    assert calls[0].sandbox.detail is None  # a run's first call never asks for a kept sandbox
    assert f"bwrap: Can't find source path {missing}" in (calls[1].sandbox.detail or "")
    assert f"Can't find source path {missing}" in caplog.text
    manifest = finish(gate)
    recorded = {c["id"]: c for c in manifest["tool_calls"]}  # type: ignore[union-attr]
    assert f"Can't find source path {missing}" in recorded[calls[1].id]["sandbox"]["detail"]
