"""bench/agent_gate.py runs end to end at ``--quick`` size (no figure asserted: see tests/test_bench_smoke.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_bench_smoke import run_quick


@pytest.mark.sandbox
def test_agent_gate_quick_run_prints_both_figures(tmp_path: Path) -> None:
    stdout, report = run_quick("agent_gate.py", tmp_path)
    assert report["bench"] == "agent_gate"
    assert report["results"]["round_trip_ms"]["n"] == report["results"]["commands"]
    assert "approval never (no client in the loop)" in stdout
    assert set(report["targets"]) == {"agent turn wall, gated ÷ never", "approval round trip p95 (ms)"}
