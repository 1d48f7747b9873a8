"""Every script under examples/: without its arguments it prints its usage and exits 2, and the commands its
docstring shows run as written, in a scratch directory holding a copy of examples/.

A docstring's commands are its lines indented by exactly four spaces; they run in order in one ``sh -e``, from the
scratch directory, with this venv's ``bin`` first on ``PATH`` (the docstrings say "with the project's venv
active") and ``PREFECT_API_URL`` pointing at the test server.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))


def docstring_commands(script: Path) -> list[str]:
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")), clean=False) or ""
    return [line[4:] for line in doc.splitlines() if line.startswith("    ") and not line[4:5].isspace()]


def scratch_examples(tmp_path: Path) -> Path:
    shutil.copytree(
        EXAMPLES, tmp_path / "examples", ignore=shutil.ignore_patterns(".runs", "out", "__pycache__")
    )
    return tmp_path


def _env(**extra: str) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def test_there_are_examples_to_check() -> None:
    assert SCRIPTS == ["scripted_agent.py", "scripted_reviewer.py", "workflow_flow.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_without_arguments_a_script_prints_its_usage_and_exits_2(tmp_path: Path, script: str) -> None:
    scratch = scratch_examples(tmp_path)
    done = subprocess.run(
        [sys.executable, f"examples/{script}"],
        cwd=scratch,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=_env(),
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Usage:" in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_script_runs_as_its_docstring_says(
    tmp_path: Path, script: str, request: pytest.FixtureRequest
) -> None:
    commands = docstring_commands(EXAMPLES / script)
    assert commands, f"{script}'s docstring shows no command to run"
    extra: dict[str, str] = {}
    if any("workflow_flow.py" in line for line in commands):
        extra["PREFECT_API_URL"] = request.getfixturevalue("prefect_server")
    scratch = scratch_examples(tmp_path)
    done = subprocess.run(
        ["sh", "-ec", "\n".join(commands)],
        cwd=scratch,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        env=_env(**extra),
    )
    assert done.returncode == 0, f"{commands}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
