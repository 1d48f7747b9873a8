"""Foundation tasks: validate the request, create the run and its records, load instruction files."""

from __future__ import annotations

import os
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from codex_orchestrator.gate import GateConfig, ToolOrchestrator
from codex_orchestrator.instructions import load_instructions
from codex_orchestrator.records.manifest import InstructionRecord
from codex_orchestrator.records.paths import RUNS_DIRNAME, RunPaths, validate_run_id
from codex_orchestrator.request import RunRequest, parse_request
from codex_orchestrator.run import RunRecorder
from tasks import context
from tasks.approval import PrefectPauseApprover


@task(name="validate-request", cache_policy=NO_CACHE, persist_result=False)
def validate_request(request: RunRequest) -> RunRequest:
    """Validate again inside the flow: deployment runs get their request from the UI, not the CLI."""
    return parse_request(request.model_dump(mode="json"))


@task(name="create-run", cache_policy=NO_CACHE, persist_result=False)
def create_run(request: RunRequest, run_id: str, runs_dir: str | None) -> str:
    workspace = Path(request.workspace)
    paths = RunPaths(
        runs_dir=Path(runs_dir) if runs_dir else workspace / RUNS_DIRNAME,
        task_id=request.task,
        run_id=validate_run_id(run_id),
    )
    recorder = RunRecorder(
        paths=paths,
        workspace=workspace,
        request=request.model_dump(mode="json"),
        goal=request.goal,
        gate_enabled=request.gate_enabled(),
        secrets=[os.environ[name] for name in request.secret_env if os.environ.get(name)],
    )
    recorder.events.output_budget_bytes = request.event_output_budget_bytes
    gate = ToolOrchestrator(
        recorder=recorder,
        config=GateConfig(
            policy=request.approval_policy,
            profile=frozenset(request.profile),
            sandbox=request.sandbox,
            enabled=request.gate_enabled(),
            approval_timeout_s=request.approval_timeout_s,
        ),
        approver=PrefectPauseApprover(),
    )
    context.register(context.LiveRun(request=request, recorder=recorder, gate=gate))
    recorder.start()
    return run_id


@task(name="load-instructions", cache_policy=NO_CACHE, persist_result=False)
def load_instruction_files(run_id: str) -> list[str]:
    live = context.get(run_id)
    files = load_instructions(live.recorder.workspace, live.request.instructions)
    live.recorder.set_instructions(
        [InstructionRecord(path=f.path, sha256=f.sha256, bytes=f.size_bytes) for f in files]
    )
    return [f"{f.path} sha256:{f.sha256}" for f in files]
