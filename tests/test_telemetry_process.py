"""One tracer and meter provider per process, shared by every run and call; the metrics a call adds; the
closed attribute vocabulary."""

from __future__ import annotations

from pathlib import Path

from opentelemetry import trace

from codex_orchestrator.records.manifest import AttemptRecord, GuardRecord, SandboxRecord, ToolCallRecord
from codex_orchestrator.redact import Redactor
from codex_orchestrator.telemetry import RunTracer, process_telemetry
from codex_orchestrator.telemetry.metrics import call_measurements
from codex_orchestrator.telemetry.vocabulary import OTHER, outcome_of, tool_of


def test_every_run_and_call_shares_the_process_providers(tmp_path: Path) -> None:
    first = RunTracer(tmp_path / "a.jsonl", run_id="a", task_id="t", redact=Redactor())
    second = RunTracer(tmp_path / "b.jsonl", run_id="b", task_id="t", redact=Redactor())
    telemetry = process_telemetry()
    assert first._process is second._process is telemetry
    assert telemetry.exporting is trace.get_tracer_provider()  # Prefect's spans go through it too
    with first.span("run"), second.span("run"):
        pass
    first.shutdown()
    second.shutdown()
    assert '"codex.run_id":"a"' in (tmp_path / "a.jsonl").read_text()
    assert '"codex.run_id":"b"' not in (tmp_path / "a.jsonl").read_text()  # each run's file gets its spans


def test_a_span_open_when_its_handle_is_shut_down_still_reaches_traces_jsonl(tmp_path: Path) -> None:
    tracer = RunTracer(tmp_path / "t.jsonl", run_id="r", task_id="t", redact=Redactor())
    with tracer.span("run"):
        tracer.shutdown()  # the run's finish, inside its own span
    assert '"name":"run"' in (tmp_path / "t.jsonl").read_text()


def test_a_finished_call_adds_its_metrics() -> None:
    call = ToolCallRecord(
        id="tc-1",
        step="push",
        milestone="exec",
        kind="shell",
        command="git push",
        cwd=".",
        status="succeeded",
        approval_source="human",
        approval_cache="miss",
        duration_ms=12.5,
        attempts=[
            AttemptRecord(attempt=1, started_at="t", duration_ms=1, sandboxed=True),
            AttemptRecord(attempt=2, started_at="t", duration_ms=1),
        ],
        sandbox=SandboxRecord(state="escalated", denial="network"),
        guard=GuardRecord(switched=True),
    )
    got = {(m.instrument, m.value, m.attributes) for m in call_measurements(call)}
    assert got == {
        ("codex.tool_calls", 1, (("codex.outcome", "escalated"), ("codex.tool", "shell"))),
        ("codex.tool_call.duration", 12.5, (("codex.outcome", "escalated"), ("codex.tool", "shell"))),
        ("codex.approvals", 1, (("codex.approval.source", "human"),)),
        ("codex.approval_cache.lookups", 1, (("codex.approval_cache.result", "miss"),)),
        ("codex.retries", 1, (("codex.tool", "shell"),)),
        ("codex.sandbox.denials", 1, (("codex.sandbox.denial", "network"),)),
        ("codex.sandbox.escalations", 1, (("codex.tool", "shell"),)),
        ("codex.guard.switches", 1, (("codex.tool", "shell"),)),
    }


def test_attribute_values_are_a_closed_vocabulary() -> None:
    assert outcome_of("timed-out", "none") == "timed_out"
    assert outcome_of("succeeded", "escalated") == "escalated"
    assert outcome_of("whatever", "none") == OTHER
    assert tool_of("rm -rf /") == OTHER


def test_the_overhead_benchmark_runs(tmp_path: Path) -> None:
    from tests.test_bench_smoke import run_quick

    stdout, report = run_quick("telemetry_overhead.py", tmp_path)
    assert "dead endpoint" in stdout
    dead = report["results"]["children"]["dead endpoint"]["counters"]["traces"]
    assert dead["failures"] >= 1 and dead["attempts"] == dead["failures"]
    assert report["results"]["live_requests_received"] >= 1
