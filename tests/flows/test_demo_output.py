"""What a person sees: `make demo`'s output and a failed run's log carry no noise, and no record is committed."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from codex_orchestrator.toolcall import call_id_for
from tests.conftest import ROOT
from tests.test_cli import CLI, cli

pytestmark = pytest.mark.prefect
NOISE = ("Traceback", "NoneType: None", "database is locked", "Failed to create the Prefect home directory")


def test_a_failed_task_logs_no_empty_traceback(prefect_server: str, workspace: Path, tmp_path: Path) -> None:
    request = tmp_path / "request.yaml"
    request.write_text(
        f"task: fails\nworkspace: {workspace}\nsandbox: none\nprofile: [read, run]\n"
        "steps: [{name: breaks, command: 'exit 3'}]\n"
    )
    done = cli("run", str(request), env={"PREFECT_API_URL": prefect_server}, timeout=180)
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"{call_id_for('exec', 'breaks')} breaks: failed" in done.stderr
    assert "NoneType: None" not in done.stderr and "Traceback" not in done.stderr


def test_the_demo_prints_only_what_a_person_needs(tmp_path: Path) -> None:
    # As `make demo` runs it: the embedded server, PREFECT_HOME under a directory that does not exist yet.
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "demo" / "prefect-home")
    done = subprocess.run(
        [*CLI, "demo", "--dir", str(tmp_path / "demo")],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert [noise for noise in NOISE if noise in output] == []
    reviewer_lines = [line for line in done.stdout.splitlines() if "no TTY: answering" in line]
    assert reviewer_lines and all(line.startswith("no TTY: answering") for line in reviewer_lines)
    assert all(line.endswith("would") for line in reviewer_lines)  # nothing ran into the end of the line
    # The agent step is the real codex driven by the scripted model: it read, patched, ran the tests, and its
    # `git ls-remote` (network, beyond the profile) was asked and answered by the scripted reviewer.
    assert (
        "demo: agent    agent: codex " in done.stdout
        and " completed, 1 turn(s), tool calls 4 succeeded" in done.stdout
    )
    statuses = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("    agent: ")]
    assert statuses == ["succeeded"] * 4
    assert "approval=human        git ls-remote review" in done.stdout
    assert any("answering approval tc-agent-" in line and ".call-" in line for line in reviewer_lines)
    # The review before hand-off, answered by the scripted reviewer command without a TTY; the snapshots.
    assert "demo: review   approved (source reviewer" in done.stdout
    assert "  guardrail spec-guard  passed   required" in done.stdout
    assert "  guardrail eval        passed   advisory" in done.stdout
    assert "demo: change   " in done.stdout
    # One notice per pause (the CLI's; Prefect's log line of it goes to the UI only), naming each approval once.
    notices = re.findall(r"waiting for approval (\S+) of run", output)
    assert notices and len(notices) == len(set(notices)), notices
    # The tool-call summary is a table: each column starts where it starts on every other line.
    lines = done.stdout.split("\n  approval cache:")[0].split("(exit 0)\n")[-1].splitlines()
    assert len(lines) >= 3 and len({len(line.split()[0]) for line in lines}) > 1  # ids of different lengths
    starts = {tuple(m.start() for m in re.finditer(r"\S+", line)) for line in lines}
    assert len(starts) == 1, lines
    snapshots = [line.split()[2] for line in done.stdout.splitlines() if line.startswith("demo: snapshot ")]
    assert snapshots == ["metrics", "post-rollout", "completeness", "state", "mttr-delta"]
    (repo,) = (tmp_path / "demo").glob("*/repo")
    committed = subprocess.run(
        ["git", "log", "--name-only", "--format="], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "CHANGELOG.md" in committed  # the demo's commit steps ran `git add -A` and committed
    assert "tests/test_multiply.py" in committed and "calc.py" in committed  # the agent's patch
    assert [path for path in committed if "__pycache__" in path] == []
    assert [path for path in committed if path.startswith(".runs")] == []
