"""Ctrl-C on the embedded server: seconds from a SIGINT to the process group of ``codex-orchestrator run`` (no
``PREFECT_API_URL``, so it starts Prefect's temporary server) while its run waits for an approval, until the
process has exited; against the floor, Prefect's temporary server alone stopped by the same Ctrl-C.

Each round also checks what a user relies on: exit 130, the run recorded ``interrupted``, nothing of the
process group left running. Run from the repo root: ``.venv/bin/python bench/interrupt.py [--quick]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script (``python bench/interrupt.py``): make the repo root importable for ``bench._common``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable

from bench._common import BenchError, Stats, emit_report, note, parser, print_table, ratio, spread_target
from codex_orchestrator.exec.local import session_members

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROUNDS = 3
QUICK_ROUNDS = 1
# The README promises "within seconds"; issue 21 sets 5 s (it was 8.1 s on a quiet machine).
CTRL_C_TARGET_S = 5.0
# Only stops a broken round from hanging the benchmark; never a measurement bound.
WAIT_S = 300.0
RUN = "codex-orchestrator run, paused for an approval"
SERVER = "Prefect's temporary server alone"
# The floor: the server Prefect starts for a flow without an API, stopped as Prefect stops it at exit.
SERVER_SCRIPT = """
import os, signal
from prefect.server.api.server import SubprocessASGIServer
server = SubprocessASGIServer()
server.start()
def stop(*_):
    server.stop()
    os._exit(130)
signal.signal(signal.SIGINT, stop)
print("ready", flush=True)
signal.pause()
"""


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(home)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    return env


def _wait_for(check: Callable[[], bool], proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if proc.poll() is not None:
            raise BenchError(f"the process exited {proc.returncode} before {what}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise BenchError(f"no {what} within {WAIT_S}s")
        time.sleep(0.05)


def _interrupt(proc: subprocess.Popen[bytes]) -> float:
    """SIGINT to the group, as a terminal's Ctrl-C; seconds until the process has exited."""
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(WAIT_S)
    except subprocess.TimeoutExpired as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        raise BenchError(f"still running {WAIT_S}s after Ctrl-C") from exc
    elapsed = time.monotonic() - started
    if proc.returncode != 130:
        raise BenchError(f"exit {proc.returncode} after Ctrl-C, not 130")
    if session_members(proc.pid):
        raise BenchError(f"left running after Ctrl-C: {session_members(proc.pid)}")
    return elapsed


def time_run(scratch: Path) -> float:
    workspace = scratch / "workspace"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    request = {
        "task": "ctrl-c",
        "workspace": str(workspace),
        "profile": ["read", "edit", "run"],
        "sandbox": "workspace-write",
        "approval_timeout_s": 600,
        "steps": [{"name": "publish", "command": "true", "capabilities": ["network"]}],
    }
    (scratch / "request.json").write_text(json.dumps(request))
    cli = [sys.executable, "-m", "codex_orchestrator.cli", "run", str(scratch / "request.json")]
    proc = subprocess.Popen(
        [*cli, "--run-id", "ctrl-c", "--no-prompt"],
        cwd=ROOT,
        env=_env(scratch / "prefect-home"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group, as a terminal gives it
    )
    manifest = workspace / ".runs" / "ctrl-c" / "cli" / "ctrl-c" / "manifest.json"

    def paused() -> bool:
        try:
            return bool(json.loads(manifest.read_text()).get("pending_approvals"))
        except (OSError, ValueError):
            return False

    _wait_for(paused, proc, "pause for the approval")
    elapsed = _interrupt(proc)
    if json.loads(manifest.read_text())["status"] != "interrupted":
        raise BenchError("the run is not recorded interrupted")
    return elapsed


def time_server(scratch: Path) -> float:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT],
        cwd=ROOT,
        env=_env(scratch / "prefect-home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        proc.kill()
        raise BenchError(f"the server script exited {proc.wait()} before it was ready")
    return _interrupt(proc)


def main(argv: list[str] | None = None) -> int:
    options = parser(__doc__.splitlines()[0] if __doc__ else "").parse_args(argv)
    rounds = QUICK_ROUNDS if options.quick else DEFAULT_ROUNDS
    samples: dict[str, list[float]] = {RUN: [], SERVER: []}
    try:
        for n in range(rounds):
            for row, timer in ((RUN, time_run), (SERVER, time_server)):
                scratch = Path(tempfile.mkdtemp(prefix="codex-bench-interrupt-"))
                try:
                    note(f"round {n + 1}/{rounds}: {row} ...")
                    samples[row].append(timer(scratch))
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    stats = {row: Stats.of(values) for row, values in samples.items()}
    floor = stats[SERVER].p50
    print_table(
        f"Seconds from Ctrl-C to exit ({rounds} rounds; load average {os.getloadavg()[0]:.1f})",
        ["row", "median", "max", "x floor"],
        [[row, s.p50, max(samples[row]), ratio(s.p50, floor)] for row, s in stats.items()],
    )
    targets = {
        "Ctrl-C to exit, run paused on the embedded server": spread_target(
            samples[RUN], CTRL_C_TARGET_S, unit="s"
        )
    }
    results = {
        "rounds": rounds,
        "load_average": round(os.getloadavg()[0], 2),
        "seconds": {row: [round(v, 3) for v in values] for row, values in samples.items()},
        "x_floor": round(ratio(stats[RUN].p50, floor), 3),
    }
    emit_report("interrupt", results, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
