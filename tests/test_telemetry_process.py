"""One tracer and meter provider per process, shared by every run and call; the metrics a call adds; the
closed attribute vocabulary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry import trace

from codex_orchestrator.execute import CallInput, GateSettings
from codex_orchestrator.policy import Capability
from codex_orchestrator.records.manifest import AttemptRecord, GuardRecord, SandboxRecord, ToolCallRecord
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.redact import Redactor
from codex_orchestrator.request import Step
from codex_orchestrator.run import RunOwner
from codex_orchestrator.telemetry import (
    RunTracer,
    current_traceparent,
    process_telemetry,
    reset_process_telemetry,
)
from codex_orchestrator.telemetry.metrics import call_measurements
from codex_orchestrator.telemetry.vocabulary import OTHER, outcome_of, tool_of
from codex_orchestrator.toolcall import call_id_for


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


CALL_IN_CHILD = """
import sys
from codex_orchestrator.approvals import NoApprover
from codex_orchestrator.execute import CallInput, execute_call
record = execute_call(CallInput.model_validate_json(sys.stdin.read()), NoApprover("nobody asks here"))
sys.exit(0 if record.status == "succeeded" else 1)
"""


def test_a_call_in_another_process_joins_the_runs_trace(workspace: Path) -> None:
    """As on a Dask worker: the call arrives by value, with its run's trace context in ``traceparent``."""
    ref = RunRef(run_id="xproc", task_id="t", runs_dir=str(workspace / ".runs"), workspace=str(workspace))
    owner = RunOwner.create(ref, request={}, with_milestones=False)
    owner.start()
    with owner.tracer.span("milestone") as span:
        call = CallInput(
            run=ref,
            call_id=call_id_for("exec", "a"),
            milestone="exec",
            step=Step(name="a", command="true"),
            gate=GateSettings(profile=[Capability.READ, Capability.RUN]),
            traceparent=current_traceparent(),
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        subprocess.run(
            [sys.executable, "-c", CALL_IN_CHILD],
            input=call.model_dump_json(),
            text=True,
            env=env,
            check=True,
        )
        parent = span.get_span_context()
    owner.finish("succeeded", 0)
    spans = [json.loads(line) for line in owner.paths.traces.read_text().splitlines()]
    (tool,) = [s for s in spans if s["name"] == "tool_call"]
    assert tool["trace_id"] == f"{parent.trace_id:032x}"
    assert tool["parent_span_id"] == f"{parent.span_id:016x}"
    (attempt,) = [s for s in spans if s["name"] == "attempt"]
    assert attempt["parent_span_id"] == tool["span_id"]


def test_a_bad_otel_variable_is_refused_with_one_line_and_nothing_written(workspace: Path) -> None:
    from tests.test_cli import cli

    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpcc",
    }
    done = cli("exec", "--", "true", cwd=workspace, env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "codex-orchestrator exec: error: env: OTEL_EXPORTER_OTLP_PROTOCOL: 'grpcc' is not one of http/protobuf, grpc"
    ]
    assert not (workspace / ".runs").exists()


def test_otel_sdk_disabled_turns_every_span_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    reset_process_telemetry()
    try:
        tracer = RunTracer(tmp_path / "t.jsonl", run_id="r", task_id="t", redact=Redactor())
        with tracer.span("run"):
            pass
        assert tracer.export_state.value == "sdk-disabled"
    finally:
        reset_process_telemetry()
    assert not (tmp_path / "t.jsonl").exists()
