"""Traces and metrics in real OTLP backends started by the suite: Arize Phoenix for traces (read back through its
REST API) and a loopback receiver that decodes the real OTLP metrics protobuf. Covers issue 10, items 1-5:
one trace per run nested in Prefect's own spans (parent/child ids), metrics over OTLP, secrets redacted in what
is exported, export turned off, and the overload guard when the backend stops mid-run."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codex_orchestrator.approvals import NoApprover
from codex_orchestrator.execcmd import ExecOptions, call_input, run_exec
from codex_orchestrator.execute import CallInput, execute_call
from codex_orchestrator.records.paths import RunPaths
from codex_orchestrator.redact import Redactor
from codex_orchestrator.request import Step
from codex_orchestrator.run import RunOwner
from codex_orchestrator.telemetry import RunTracer, process_telemetry, reset_process_telemetry
from codex_orchestrator.telemetry.guard import backoff_delay_s
from codex_orchestrator.telemetry.process import SHUTDOWN_DEADLINE_S
from codex_orchestrator.toolcall import call_id_for
from tests.conftest import validate_manifest
from tests.otel_backend import MetricsReceiver, PhoenixServer, metrics_receiver, phoenix, running_phoenix

__all__ = ["metrics_receiver", "phoenix", "running_phoenix"]  # fixtures


@pytest.fixture
def otlp(
    monkeypatch: pytest.MonkeyPatch, running_phoenix: PhoenixServer, metrics_receiver: MetricsReceiver
) -> Iterator[tuple[PhoenixServer, MetricsReceiver]]:
    """This process exports traces to Phoenix and metrics to the receiver (the OTel variables, read afresh)."""
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("CODEX_ORCHESTRATOR_OTEL", raising=False)
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", running_phoenix.traces_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", metrics_receiver.endpoint)
    reset_process_telemetry()
    try:
        yield running_phoenix, metrics_receiver
    finally:
        reset_process_telemetry()


def _by_run(spans: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["attributes"].get("codex.run_id") == run_id]


def _one(spans: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [s for s in spans if all(s.get(k) == v or s["attributes"].get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, [(s["name"], s["attributes"]) for s in spans])
    return found[0]


def _exec(workspace: Path, argv: tuple[str, ...], **options: Any) -> tuple[CallInput, dict[str, Any]]:
    call = call_input(ExecOptions(argv=argv, workspace=workspace, cwd=workspace, task_id="otel", **options))
    result = run_exec(call, NoApprover("no approver in this test"))
    return call, validate_manifest(result.manifest)


def test_an_exec_run_is_one_trace_in_phoenix_and_its_metrics_reach_the_receiver(
    otlp: tuple[PhoenixServer, MetricsReceiver], workspace: Path
) -> None:
    phoenix, receiver = otlp
    call, manifest = _exec(workspace, ("sh", "-c", "echo hello"))
    run_id = call.run.run_id
    assert manifest["status"] == "succeeded"
    assert manifest["telemetry"]["export"] == "otlp"
    assert manifest["telemetry"]["endpoint"] == phoenix.url
    assert manifest["telemetry"]["export_failures"]["traces"] == 0
    process_telemetry().flush()  # the run span ends after the run's own flush
    trace_id = phoenix.wait_for_run(run_id, {"tool_call"})[0]["context"]["trace_id"]
    spans = phoenix.wait_for_spans(trace_id, {"run", "tool_call", "attempt"})
    run = _one(spans, name="run")
    tool = _one(spans, name="tool_call")
    attempt = _one(spans, name="attempt")
    assert run["parent_id"] is None  # exec outside Prefect: the run is the root
    assert tool["parent_id"] == run["context"]["span_id"]
    assert attempt["parent_id"] == tool["context"]["span_id"]
    assert {s["context"]["trace_id"] for s in spans} == {trace_id}
    assert tool["attributes"]["codex.outcome"] == "succeeded"
    assert tool["attributes"]["codex.sandbox.state"] in {"sandboxed", "none", "unavailable"}
    # the same spans, with the same ids, in traces.jsonl
    lines = [json.loads(x) for x in _paths(call).traces.read_text().splitlines()]
    assert {(x["name"], x["span_id"]) for x in lines} >= {("tool_call", tool["context"]["span_id"])}

    points = receiver.points()
    calls = points["codex.tool_calls"]
    assert any(a == {"codex.outcome": "succeeded", "codex.tool": "shell"} and p.as_int >= 1 for a, p in calls)
    durations = points["codex.tool_call.duration"]
    assert any(a["codex.outcome"] == "succeeded" and p.count >= 1 for a, p in durations)
    assert any(a == {"codex.approval.source": "not-required"} for a, _p in points["codex.approvals"])


def _paths(call: CallInput) -> RunPaths:
    return RunPaths(Path(call.run.runs_dir), call.run.task_id, call.run.run_id)


def test_secrets_are_redacted_in_what_phoenix_receives(
    otlp: tuple[PhoenixServer, MetricsReceiver], tmp_path: Path
) -> None:
    phoenix, _receiver = otlp
    secret = f"tok-{uuid.uuid4().hex}"
    run_id = f"r-{uuid.uuid4().hex[:8]}"
    tracer = RunTracer(tmp_path / "traces.jsonl", run_id=run_id, task_id="t", redact=Redactor([secret]))
    with pytest.raises(ValueError), tracer.span("run", **{"codex.step": f"deploy {secret}"}) as span:
        tracer.set(span, **{"codex.tool_call.id": f"id-{secret}"})
        raise ValueError(f"the server said {secret}")
    tracer.shutdown()
    process_telemetry().flush()
    (span_json,) = [json.dumps(s) for s in phoenix.wait_for_run(run_id, {"run"})]
    assert secret not in span_json
    assert "deploy ***" in span_json and "the server said ***" in span_json
    assert secret not in (tmp_path / "traces.jsonl").read_text()


@pytest.mark.prefect
def test_a_run_is_one_trace_nested_in_prefects_own_spans(
    otlp: tuple[PhoenixServer, MetricsReceiver], prefect_server: str, workspace: Path
) -> None:
    """autonomy flow (Prefect) → run → exec flow (Prefect) → milestone → tool-call task (Prefect) → tool_call
    → attempt: each parent id is the span id of the one before, in one trace."""
    from flows.runner import run_request

    phoenix, _receiver = otlp
    run_id = f"t-{uuid.uuid4().hex[:10]}"
    request = {
        "task": "otel-flow",
        "workspace": str(workspace),
        "profile": ["read", "edit", "run"],
        "steps": [{"name": "hello", "command": "echo hello"}],
    }
    request_file = workspace.parent / f"request-{run_id}.json"
    request_file.write_text(json.dumps(request))
    code, manifest_path = run_request(request_file, run_id=run_id, say=lambda _t: None)
    assert code == 0
    manifest = validate_manifest(manifest_path)
    process_telemetry().flush()
    trace_ids = {s["context"]["trace_id"] for s in phoenix.wait_for_run(run_id, {"run", "tool_call"})}
    assert len(trace_ids) == 1, trace_ids  # one trace per run
    parent_flow_run = manifest["prefect"]["parent_flow_run_id"]
    spans = phoenix.wait_for_spans(
        trace_ids.pop(),
        {"run", "milestone", "tool_call", "attempt"},
        also=lambda got: any(s["attributes"].get("prefect.run.id") == parent_flow_run for s in got),
    )

    def prefect_span(run_id: str) -> dict[str, Any]:
        return _one(spans, **{"prefect.run.id": run_id})

    exec_flow_run = next(m["flow_run_id"] for m in manifest["milestones"] if m["name"] == "exec")
    (call,) = manifest["tool_calls"]
    autonomy = prefect_span(parent_flow_run)
    run = _one(spans, name="run")
    exec_flow = prefect_span(exec_flow_run)
    milestone = _one(spans, name="milestone", **{"codex.milestone": "exec"})
    task = prefect_span(call["prefect_task_run_id"])
    tool = _one(spans, name="tool_call")
    attempt = _one(spans, name="attempt")
    chain = [autonomy, run, exec_flow, milestone, task, tool, attempt]
    for parent, child in itertools.pairwise(chain):
        assert child["parent_id"] == parent["context"]["span_id"], (parent["name"], child["name"])
    assert autonomy["attributes"]["prefect.run.type"] == "flow"
    assert task["attributes"]["prefect.run.type"] == "task"


def test_export_off_keeps_traces_jsonl_and_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, metrics_receiver: MetricsReceiver, workspace: Path
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", metrics_receiver.endpoint)
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", metrics_receiver.endpoint.replace("metrics", "traces")
    )
    monkeypatch.setenv("CODEX_ORCHESTRATOR_OTEL", "off")
    reset_process_telemetry()
    try:
        call, manifest = _exec(workspace, ("sh", "-c", "true"))
        process_telemetry().flush()
    finally:
        reset_process_telemetry()
    assert manifest["telemetry"]["export"] == "off"
    assert manifest["telemetry"]["endpoint"] is None
    names = {json.loads(x)["name"] for x in _paths(call).traces.read_text().splitlines()}
    assert {"run", "tool_call", "attempt"} <= names
    assert metrics_receiver.points() == {}


def test_a_request_can_turn_export_off_for_its_run(
    otlp: tuple[PhoenixServer, MetricsReceiver], workspace: Path, tmp_path: Path
) -> None:
    _phoenix, receiver = otlp
    ref = call_input(ExecOptions(argv=("true",), workspace=workspace, cwd=workspace)).run
    owner = RunOwner.create(ref, request={}, with_milestones=False, telemetry_export=False)
    owner.start()
    call = CallInput(
        run=ref,
        call_id=call_id_for("exec", "a"),
        milestone="exec",
        step=Step(name="a", command="true"),
        otel_export=False,
    )
    with owner.tracer.span("run"):
        execute_call(call, NoApprover("no approver in this test"))
    owner.finish("succeeded", 0)
    manifest = validate_manifest(owner.paths.manifest)
    assert manifest["telemetry"] == {**manifest["telemetry"], "export": "off", "export_requested": False}
    assert "tool_call" in owner.paths.traces.read_text()
    assert "codex.tool_calls" not in receiver.points()


def test_backend_stopped_mid_run_is_counted_once_and_never_fails_the_run(
    otlp: tuple[PhoenixServer, MetricsReceiver], workspace: Path
) -> None:
    """Item 4: the run goes on and succeeds, the failures land in the manifest, no further attempt is made
    while backing off, and shutdown is bounded."""
    phoenix, receiver = otlp
    ref = call_input(ExecOptions(argv=("true",), workspace=workspace, cwd=workspace, task_id="stop")).run
    owner = RunOwner.create(ref, request={}, with_milestones=False)
    owner.start()

    def call(name: str) -> str:
        record = execute_call(
            CallInput(
                run=ref,
                call_id=call_id_for("exec", name),
                milestone="exec",
                step=Step(name=name, command="true"),
            ),
            NoApprover("no approver in this test"),
        )
        return record.status

    with owner.tracer.span("run"):
        assert call("before") == "succeeded"
        process_telemetry().flush()
        assert "tool_call" in {s["name"] for s in phoenix.wait_for_run(ref.run_id, {"tool_call"})}
        phoenix.stop()
        receiver.close()
        assert call("after") == "succeeded"
        owner.finish("succeeded", 0)
    manifest = validate_manifest(owner.paths.manifest)
    assert manifest["status"] == "succeeded"
    failures = manifest["telemetry"]["export_failures"]
    assert failures["traces"] == 1  # one attempt failed; the next waits out the backoff
    assert failures["metrics"] == 1
    assert failures["last_error"]
    telemetry = process_telemetry()
    before = telemetry.counters()
    for _ in range(5):  # the endpoint is still down: nothing is attempted while backing off
        with owner.tracer.span("late"):
            pass
        telemetry.flush()
    after = telemetry.counters()
    assert after["traces"].attempts == before["traces"].attempts
    assert after["metrics"].attempts == before["metrics"].attempts
    assert backoff_delay_s(1) * 3 >= 60  # ≤ 3 attempts a minute
    # Shutdown is bounded whatever the endpoint does: each export request times out within the deadline,
    # and the exporters are shut down on threads that shutdown() waits for at most SHUTDOWN_DEADLINE_S.
    assert telemetry.config.timeout_s < SHUTDOWN_DEADLINE_S <= 5
    telemetry.shutdown()
    assert telemetry.batch is not None and telemetry.span_guard is not None
    assert telemetry.span_guard.guard.closed  # it returned after closing the exporter, not by giving up
