"""Telemetry overhead: ms per tool call with tracing + metrics exported to a live OTLP endpoint and to a dead one,
against telemetry off, each variant in a process of its own (the OTel configuration is per process) and the
calls interleaved round by round; then what building a tracer provider per call (the old RunTracer) cost.

Run from the repo root: ``PREFECT_HOME=$(mktemp -d) .venv/bin/python bench/telemetry_overhead.py [--quick]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script (``python bench/telemetry_overhead.py``): make the repo root importable for ``bench._common``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench._common import BenchError, Stats, Target, emit_report, note, parser, print_table, ratio

DEFAULT_CALLS = 200
QUICK_CALLS = 6
CALLS_PER_ROUND = 2  # each child runs this many calls, then the next child runs its own
WARMUP_CALLS = 3
PROVIDER_ROUNDS = 300
QUICK_PROVIDER_ROUNDS = 20
TARGET_OVERHEAD = 1.05  # within 5% of a tool call's median with telemetry off
OFF, LIVE, DEAD = "telemetry off", "live endpoint", "dead endpoint"
# A second telemetry-off process: how far two identical processes differ here (the noise floor of the ratios).
OFF_AGAIN = "telemetry off, again"
COMMAND = "true"


class _Receiver(BaseHTTPRequestHandler):
    """A live OTLP/HTTP endpoint: takes any export and answers 200 with an empty protobuf response."""

    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def live_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def dead_endpoint() -> str:
    """A loopback port nobody listens on (bound, then released): every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def child_env(endpoint: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CODEX_ORCHESTRATOR_OTEL"))}
    if endpoint is None:
        env["CODEX_ORCHESTRATOR_OTEL"] = "off"
    else:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        # Metrics every 2 s instead of 30 (spans keep the SDK's 5 s): several exports, and when the endpoint is
        # dead, failures and backoff, happen while the calls are timed.
        env["OTEL_METRIC_EXPORT_INTERVAL"] = "2000"
    return env


class Child:
    """One variant: a process that opens a run and times tool calls through the gate when told to."""

    def __init__(self, name: str, endpoint: str | None, scratch: Path) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(scratch / name.replace(" ", "-"))],
            env=child_env(endpoint),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def calls(self, n: int) -> list[float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"the {self.name} child ended early (exit {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise BenchError(f"{self.name}: {reply['error']}")
        return [float(x) for x in reply["ms"]]

    def close(self) -> dict[str, Any]:
        """Ends the child; returns what it reports: its export counters and how long its shutdown took."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("end\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        started = time.monotonic()
        self.proc.wait(timeout=60)
        summary: dict[str, Any] = json.loads(line) if line else {}
        summary["exit_s"] = round(time.monotonic() - started + summary.get("shutdown_s", 0.0), 3)
        return summary


def child_main(workdir: Path) -> int:
    """The child's side: open one exec-mode run, then answer each ``N`` line with N timed tool calls."""
    from codex_orchestrator.approvals import NoApprover
    from codex_orchestrator.execute import CallInput, GateSettings, execute_call
    from codex_orchestrator.records.store import RunRef
    from codex_orchestrator.request import Step
    from codex_orchestrator.run import RunOwner
    from codex_orchestrator.sandbox import SandboxMode
    from codex_orchestrator.telemetry import process_telemetry

    workspace = workdir / "repo"
    workspace.mkdir(parents=True)
    ref = RunRef(run_id="bench", task_id="bench", runs_dir=str(workdir / ".runs"), workspace=str(workspace))
    owner = RunOwner.create(ref, request={}, with_milestones=False)
    owner.start()
    approver = NoApprover("the benchmark never asks")
    gate = GateSettings(
        sandbox=SandboxMode.NONE, profile=["read", "run"]
    )  # the sandbox's cost is not measured
    done = 0
    with owner.tracer.span("run"):
        for line in sys.stdin:
            if line.strip() == "end":
                break
            samples: list[float] = []
            for _ in range(int(line)):
                done += 1
                name = f"c{done}"
                call = CallInput(
                    run=ref,
                    call_id=f"tc-{name}",
                    milestone="exec",
                    step=Step(name=name, command=COMMAND),
                    gate=gate,
                )
                started = time.perf_counter_ns()
                record = execute_call(call, approver)
                samples.append((time.perf_counter_ns() - started) / 1e6)
                if record.status != "succeeded":
                    print(json.dumps({"error": f"call {name} {record.status}: {record.error}"}), flush=True)
                    return 1
            print(json.dumps({"ms": samples}), flush=True)
        owner.finish("succeeded", 0)
    telemetry = process_telemetry()
    shutdown_started = time.monotonic()
    telemetry.shutdown()
    shutdown_s = time.monotonic() - shutdown_started
    counters = {k: vars(v) for k, v in telemetry.counters().items()}
    print(json.dumps({"counters": counters, "shutdown_s": round(shutdown_s, 3)}), flush=True)
    return 0


def provider_per_call_ms(rounds: int, scratch: Path) -> tuple[Stats, Stats]:
    """The old RunTracer built a TracerProvider with a file exporter for every call; now calls share one."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from bench._common import interleaved_ms
    from codex_orchestrator.redact import Redactor
    from codex_orchestrator.telemetry import JsonLinesSpanExporter, RunTracer

    path = scratch / "traces.jsonl"

    def per_call() -> None:
        provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
        with provider.get_tracer("bench").start_as_current_span("tool_call"):
            pass
        provider.shutdown()

    def shared() -> None:
        tracer = RunTracer(path, run_id="bench", task_id="bench", redact=Redactor())
        with tracer.span("tool_call"):
            pass
        tracer.shutdown()

    samples = interleaved_ms({"per call": per_call, "shared": shared}, rounds, 5)
    return Stats.of(samples["per call"]), Stats.of(samples["shared"])


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0] if __doc__ else "telemetry overhead")
    args.add_argument("--calls", type=int, help=f"timed calls per variant (default {DEFAULT_CALLS})")
    args.add_argument("--child", help=argparse_hidden())
    options = args.parse_args(argv)
    if options.child:
        return child_main(Path(options.child))
    calls = options.calls or (QUICK_CALLS if options.quick else DEFAULT_CALLS)
    rounds = QUICK_PROVIDER_ROUNDS if options.quick else PROVIDER_ROUNDS
    scratch = Path(tempfile.mkdtemp(prefix="codex-bench-otel-"))
    samples: dict[str, list[float]] = {OFF: [], LIVE: [], DEAD: [], OFF_AGAIN: []}
    summaries: dict[str, dict[str, Any]] = {}
    try:
        with live_endpoint() as live:
            children = [
                Child(OFF, None, scratch),
                Child(LIVE, live, scratch),
                Child(DEAD, dead_endpoint(), scratch),
                Child(OFF_AGAIN, None, scratch),
            ]
            try:
                note(f"timing {calls} tool calls (`{COMMAND}`, no sandbox) per variant, interleaved ...")
                for child in children:
                    child.calls(WARMUP_CALLS)
                for round_no in range(-(-calls // CALLS_PER_ROUND)):
                    shift = round_no % len(children)
                    for child in children[shift:] + children[:shift]:
                        samples[child.name].extend(child.calls(CALLS_PER_ROUND))
            finally:
                for child in children:
                    summaries[child.name] = child.close()
            received = _Receiver.received
        note(f"timing a tracer provider per call against the shared one, {rounds} rounds ...")
        per_call, shared = provider_per_call_ms(rounds, scratch)
    except (BenchError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    stats = {name: Stats.of(s) for name, s in samples.items()}
    off = stats[OFF].p50
    print_table(
        f"Per tool call (`{COMMAND}` through the gate, {calls} calls a variant, interleaved; ms)",
        ["variant", "median", "p95", "x off", "export attempts", "failed", "shutdown s"],
        [
            [
                name,
                s.p50,
                s.p95,
                ratio(s.p50, off),
                sum(c["attempts"] for c in summaries[name].get("counters", {}).values()),
                sum(c["failures"] for c in summaries[name].get("counters", {}).values()),
                summaries[name].get("shutdown_s", 0.0),
            ]
            for name, s in stats.items()
        ],
    )
    print_table(
        "One span: a tracer provider per call (before) against the process's shared one (ms)",
        ["variant", "median", "p95"],
        [["provider per call", per_call.p50, per_call.p95], ["shared provider", shared.p50, shared.p95]],
    )
    results = {
        "calls": calls,
        "per_call_ms": {name: s.as_dict() for name, s in stats.items()},
        "children": summaries,
        "live_requests_received": received,
        "span_ms": {"provider_per_call": per_call.as_dict(), "shared": shared.as_dict()},
    }
    targets = {
        "live endpoint / telemetry off (median per call)": Target(
            ratio(stats[LIVE].p50, off), TARGET_OVERHEAD
        ),
        "dead endpoint / telemetry off (median per call)": Target(
            ratio(stats[DEAD].p50, off), TARGET_OVERHEAD
        ),
        "dead endpoint shutdown s / 5 s": Target(ratio(summaries[DEAD].get("shutdown_s", 0.0), 5.0), 1.0),
    }
    emit_report("telemetry_overhead", results, targets)
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    raise SystemExit(main())
