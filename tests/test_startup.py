"""Start-up of ``exec``: a call that needs no pause runs without importing Prefect (~0.8 s) or anything only a
person at a prompt needs (rich's Markdown, markdown-it: ~0.1 s). Checked in a fresh interpreter that really
runs the call, sandboxed, so every lazy import on that path is exercised."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Top-level packages the no-pause exec path must not import.
MUST_NOT_IMPORT = ("prefect", "prefect_shell", "flows", "tasks", "markdown_it")

_PROBE = """
import json, sys
sys.argv = ["codex-orchestrator", "exec", "--json", "--workspace", sys.argv[1], "--", "true"]
from codex_orchestrator.cli import main
try:
    code = main()
except SystemExit as exc:
    code = exc.code
loaded = sorted({name.split(".")[0] for name in sys.modules} | {n for n in sys.modules if n == "rich.markdown"})
print(json.dumps({"code": code, "modules": loaded}), file=sys.stderr)
"""


@pytest.mark.parametrize("sandbox", ["workspace-write", "none"])
def test_exec_without_a_pause_imports_no_prefect(tmp_path: Path, sandbox: str) -> None:
    probe = _PROBE.replace('"--", "true"', f'"--sandbox", "{sandbox}", "--", "true"')
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, done.stderr
    assert '"status":"succeeded"' in done.stdout.replace(" ", "")
    imported = [name for name in MUST_NOT_IMPORT if name in report["modules"]]
    assert not imported, f"exec without a pause imported {imported}"
    assert "rich.markdown" not in report["modules"]
