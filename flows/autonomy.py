"""The parent flow of an autonomy run: opens (or resumes) the run, then foundation → exec → telemetry →
verification as subflows, and finishes the run with the status its calls and milestones give.

Its parameters carry no secrets: the CLI and the SDK pass the request by path (read here); a deployment may
pass it inline (use ``secret_env`` names for secrets, never values). Deployment runs of one task never overlap:
each holds the task's global concurrency slot (``codex-task-<task>``, limit 1) for its whole life, so a scheduled
run that comes while another of its task is still going waits for it. (``run`` and ``resume`` from the CLI do
not: a resume must not wait for the lease of the killed run it continues.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from prefect import Flow, State, flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import FlowRun
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, TerminationSignal
from prefect.states import Completed, Failed

from codex_orchestrator.errors import RequestError
from codex_orchestrator.execute import close_run_sessions, read_secrets
from codex_orchestrator.records.paths import RUNS_DIRNAME, new_run_id, validate_run_id
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.request import RunRequest, load_request, parse_request
from codex_orchestrator.run import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    FINAL_RUN_STATUSES,
    RunOwner,
    interrupt_exit_code,
    run_outcome,
)
from codex_orchestrator.telemetry.vocabulary import MODE, RunMode, SpanName
from flows.interrupt import shutdown
from flows.milestones import MilestoneParams, exec_milestone, foundation, telemetry, verification
from flows.runners import task_runner_for
from flows.tracing import span_in_run
from tasks import artifacts


def resolve_request(request: RunRequest | None, request_path: str | None) -> RunRequest:
    if (request is None) == (request_path is None):
        raise RequestError("give exactly one of 'request' and 'request_path'", field="request")
    if request_path is not None:
        return load_request(Path(request_path))
    assert request is not None
    return parse_request(request.model_dump(mode="json"))


def run_ref(request: RunRequest, run_id: str | None, runs_dir: str | None) -> RunRef:
    workspace = Path(request.workspace).resolve()
    return RunRef(
        run_id=validate_run_id(run_id or new_run_id()),
        task_id=request.task,
        runs_dir=str(Path(runs_dir).resolve() if runs_dir else workspace / RUNS_DIRNAME),
        workspace=str(workspace),
    )


def open_run(request: RunRequest, ref: RunRef, *, resume: bool) -> RunOwner:
    """The one way a request's run is opened: ``run``, the SDK, a deployment and a resume all come here."""
    secrets = read_secrets(request.secret_env).values()
    if resume:
        return RunOwner.resume(ref, secrets=secrets)
    return RunOwner.create(
        ref,
        request=request.model_dump(mode="json"),
        goal=request.goal,
        gate_enabled=request.gate_enabled(),
        secrets=secrets,
        telemetry_export=request.telemetry.export,
    )


def _mark_interrupted(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Prefect hook (crashed, cancelled): the run's records say so at once, not only once its heartbeat ages."""
    params = flow_run.parameters or {}
    if not params.get("run_id"):
        return  # no id was given: the run (if it started) finishes itself, or its stale heartbeat tells
    try:
        request = resolve_request(
            RunRequest.model_validate(params["request"]) if params.get("request") else None,
            params.get("request_path"),
        )
        ref = run_ref(request, str(params["run_id"]), params.get("runs_dir"))
        owner = RunOwner.open(ref)
    except Exception:  # the run never got as far as its records
        return
    if owner.state().status in FINAL_RUN_STATUSES:
        return
    error = f"flow run {(state.name or state.type.value).lower()}: {state.message or ''}".strip()
    if state.is_crashed():
        owner.finish("interrupted", EXIT_INTERRUPTED, error=error)
    else:
        owner.finish("cancelled", EXIT_FAILED, error=error)


# A run renews its slot's lease while it lives; a crashed one frees the slot this long after its last renewal.
TASK_SLOT_LEASE_S = 60.0


def task_limit_name(task_id: str) -> str:
    """The global concurrency limit that keeps runs of one task from overlapping."""
    return f"codex-task-{task_id}"


@contextmanager
def task_slot(task_id: str) -> Iterator[None]:
    """Hold the task's one slot (created on demand) while the run lives; a run that finds it taken waits.

    The slot is leased: a run whose process dies frees it when the lease runs out."""
    name = task_limit_name(task_id)
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another run of the task may have created it first
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            limit = client.read_global_concurrency_limit_by_name(name)
    if limit.active_slots:
        get_run_logger().info("waiting for %s: another run of task %s is still going", name, task_id)
    with concurrency(name, occupy=1, strict=True, lease_duration=TASK_SLOT_LEASE_S):
        yield


@flow(
    name="autonomy",
    persist_result=False,
    log_prints=True,
    on_crashed=[_mark_interrupted],
    on_cancellation=[_mark_interrupted],
)
def autonomy(
    request: RunRequest | None = None,
    request_path: str | None = None,
    run_id: str | None = None,
    runs_dir: str | None = None,
    resume: bool = False,
) -> State[dict[str, str]]:
    """One autonomy run: ``request`` inline or ``request_path`` (a YAML/JSON file); records under
    ``runs_dir`` (default ``<workspace>/.runs``)."""
    checked = resolve_request(request, request_path)
    if not _started_by_deployment():  # `run`, `resume`, the SDK: the person running it decides what overlaps
        return _run(checked, run_id, runs_dir, resume)
    with task_slot(checked.task):
        return _run(checked, run_id, runs_dir, resume)


def _started_by_deployment() -> bool:
    ctx = FlowRunContext.get()
    return bool(ctx and ctx.flow_run and ctx.flow_run.deployment_id)


def _run(
    checked: RunRequest, run_id: str | None, runs_dir: str | None, resume: bool
) -> State[dict[str, str]]:
    ref = run_ref(checked, run_id, runs_dir)
    owner = open_run(checked, ref, resume=resume)
    ctx = FlowRunContext.get()
    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    owner.set_prefect(
        api_url=api_url, parent_flow_run_id=str(ctx.flow_run.id) if ctx and ctx.flow_run else None
    )
    owner.start()
    params = MilestoneParams(run=ref, secret_env=checked.secret_env)
    # Task runners are chosen by the request: threads here, or Dask worker processes.
    run_exec = exec_milestone.with_options(task_runner=task_runner_for(checked))
    run_verification = verification.with_options(task_runner=task_runner_for(checked))
    status = "failed"
    # The run's span, around its milestones' flow runs (exited in `finally`, so the code below keeps its shape).
    run_span = span_in_run(owner.tracer, SpanName.RUN, **{MODE: RunMode.RUN.value})
    span = run_span.__enter__()
    try:
        if owner.milestone_status("foundation") != "succeeded":
            foundation(params)
        exec_ok = (
            owner.milestone_status("exec") == "succeeded"
            or run_exec(params, return_state=True).is_completed()
        )
        if owner.milestone_status("telemetry") != "succeeded":
            telemetry(params)
        verify_ok = run_verification(params, exec_succeeded=exec_ok, return_state=True).is_completed()
        status = run_outcome(owner.manifest(), required_ok=exec_ok and verify_ok)
        owner.finish(status, EXIT_OK if status == "succeeded" else EXIT_FAILED)
    except KeyboardInterrupt as exc:
        owner.finish("interrupted", interrupt_exit_code(exc), error=str(exc) or "interrupted")
        raise
    except TerminationSignal as exc:  # Prefect's own SIGTERM bridge during a flow run
        shutdown(exc.signal)
        raise
    except BaseException as exc:
        owner.finish("failed", EXIT_FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        close_run_sessions(ref.run_id)
        if status != "succeeded":
            owner.tracer.fail(span, f"run {status}")
        run_span.__exit__(None, None, None)
    artifacts.publish(owner, "final")
    artifacts.publish_handoff(owner)
    result = {"run_id": ref.run_id, "status": status, "manifest": str(owner.paths.manifest)}
    if status == "succeeded":
        return Completed(message=f"run {ref.run_id} succeeded", data=result)
    return Failed(message=f"run {ref.run_id} {status}: see {owner.manifest_rel}", data=result)
