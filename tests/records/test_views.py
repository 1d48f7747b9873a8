"""The views of a run for people: durations, column order, the manifest reference and what each view is."""

from __future__ import annotations

import pytest

from codex_orchestrator.records.manifest import Manifest, ToolCallRecord
from codex_orchestrator.records.views import (
    descriptions,
    format_duration,
    manifest_markdown,
    metrics_rows,
    tool_call_rows,
)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (None, "—"),
        (0.0, "0.00s"),
        (241.7, "0.24s"),
        (12_345.0, "12.3s"),
        (59_960.0, "1m 00.0s"),
        (241_783.803, "4m 01.8s"),
        (7_384_000.0, "2h 03m 04s"),
    ],
)
def test_durations_read_as_time(ms: float | None, text: str) -> None:
    assert format_duration(ms) == text


def _manifest() -> Manifest:
    call = ToolCallRecord(
        id="tc-0001",
        step="build",
        milestone="exec",
        kind="shell",
        command="make",
        cwd=".",
        duration_ms=241_783.803,
    )
    return Manifest(
        run_id="r1",
        task_id="t",
        run_dir=".runs/t/cli/r1",
        created_at="x",
        updated_at="x",
        heartbeat_at="x",
        tool_calls=[call],
    )


def test_tool_call_rows_lead_with_status_step_command() -> None:
    (row,) = tool_call_rows(_manifest())
    assert list(row)[:3] == ["status", "step", "command"]
    assert row["duration"] == "4m 01.8s"


def test_metrics_say_what_they_count() -> None:
    rows = {row["metric"]: row for row in metrics_rows(_manifest())}
    assert rows["tool_calls"]["meaning"]
    assert rows["tool_call_time_total"]["value"] == "0.00s" and "tool_call_ms_total" not in rows


def test_the_manifest_is_a_path_unless_a_link_would_open() -> None:
    path = "/work/repo/.runs/t/cli/r1/manifest.json"
    text = manifest_markdown(_manifest(), path, milestone="final")
    assert f"`{path}`" in text and "file://" not in text and "](" not in text.split("| milestone")[0]
    linked = manifest_markdown(_manifest(), path, milestone="final", manifest_url="https://ci.example/m.json")
    assert f"[{path}](https://ci.example/m.json)" in linked
    served_from_disk = manifest_markdown(_manifest(), path, milestone="final", manifest_url=f"file://{path}")
    assert "file://" not in served_from_disk


def test_descriptions_say_what_each_view_is() -> None:
    final = descriptions(_manifest(), "final")
    assert final["metrics"].startswith("Counters of run r1") and final["metrics"].endswith(
        "the end of the run"
    )
    assert descriptions(_manifest(), "exec")["tool-calls"].endswith("as of the exec milestone")
