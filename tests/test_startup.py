"""Start-up of ``exec``: a call that needs no pause runs without importing Prefect (~0.8 s), anything only a
person at a prompt needs (rich's Markdown, markdown-it: ~0.1 s), rich itself when its styles would not show
(~20 ms), yaml without a request file (~10 ms), http.client/ssl without a fetch (~10 ms), OpenTelemetry's
propagators without a trace to carry (~5-15 ms) or paramiko without an SSH target. Checked in a fresh
interpreter that really runs the call, sandboxed, so every lazy import on that path is exercised, in both
output modes (JSON Lines, and the status lines for a person). Pydantic models it never uses (a request's,
verification records, most event types, the event union) stay unbuilt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Top-level packages the no-pause exec path must not import.
MUST_NOT_IMPORT = ("prefect", "prefect_shell", "flows", "tasks", "markdown_it", "rich", "yaml", "paramiko")
# Modules inside a package the path does import.
MUST_NOT_IMPORT_MODULES = ("rich.markdown", "http.client", "ssl", "opentelemetry.propagate")

_PROBE = """
import json, sys
output = ["--json"] if sys.argv[2] == "json" else []
sys.argv = ["codex-orchestrator", "exec", *output, "--workspace", sys.argv[1], "--", "true"]
from codex_orchestrator.cli import main
try:
    code = main()
except SystemExit as exc:
    code = exc.code
loaded = sorted({name.split(".")[0] for name in sys.modules} | set(sys.modules))
from codex_orchestrator.records import events, manifest
from codex_orchestrator.request import RunRequest
from codex_orchestrator.verification.records import ReviewRecord
built = {
    "RunRequest": RunRequest.__pydantic_complete__,
    "ReviewVerdict event": events.ReviewVerdict.__pydantic_complete__,
    "ReviewRecord": ReviewRecord.__pydantic_complete__,
    "DriftRecord": manifest.DriftRecord.__pydantic_complete__,
    "EVENT_ADAPTER": events.EVENT_ADAPTER.pydantic_complete,
    "Manifest": manifest.Manifest.__pydantic_complete__,
}
print(json.dumps({"code": code, "modules": loaded, "built": built}), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("sandbox", "output"), [("workspace-write", "json"), ("none", "json"), ("workspace-write", "human")]
)
def test_exec_without_a_pause_imports_no_prefect(tmp_path: Path, sandbox: str, output: str) -> None:
    probe = _PROBE.replace('"--", "true"', f'"--sandbox", "{sandbox}", "--", "true"')
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path), output],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, done.stderr
    if output == "json":
        assert '"status":"succeeded"' in done.stdout.replace(" ", "")
    else:
        assert "■ succeeded exit=0 attempts=1" in done.stderr
    imported = [name for name in (*MUST_NOT_IMPORT, *MUST_NOT_IMPORT_MODULES) if name in report["modules"]]
    assert not imported, f"exec without a pause imported {imported}"
    # Models are built when first used (defer_build): the manifest is, what a one-call run never uses is not.
    built = report["built"]
    assert built.pop("Manifest") is True
    assert not [name for name, done in built.items() if done], f"exec built unused models: {built}"
