"""Workflow-as-code: gated tool calls composed in any Prefect flow, with the records, approvals and artifacts
of a request file. The YAML request runner (flows/milestones.py) is built on this same API.

    from flows.workflow import gated_run

    @flow
    def ship() -> None:
        with gated_run(task="ship", workspace="repo", profile=["read", "edit", "run"]) as run:
            lint = run.shell("lint", "ruff check .")
            tests = run.shell("tests", ["pytest", "-q"], wait_for=[lint])
            run.edit("notes", path="NOTES.md", content="shipped\\n", wait_for=[tests])

Each call returns a Prefect future of its tool-call task; ``wait_for`` becomes a real dependency in the UI.
"""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect.exceptions import TerminationSignal
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from codex_orchestrator.call_recorder import process_gone
from codex_orchestrator.exec.errors import SSH_FAILURES
from codex_orchestrator.execute import (
    CallInput,
    GateSettings,
    close_run_sessions,
    instance_limit_name,
    read_secrets,
    record_skipped,
    record_unplaced,
)
from codex_orchestrator.graph import GraphScheduler, StepState
from codex_orchestrator.hooks import HookSettings
from codex_orchestrator.notify import NotificationTarget
from codex_orchestrator.placement import NoInstance, Placement
from codex_orchestrator.policy import ApprovalPolicy, Capability, ToolKind
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import DEFAULT_OUTPUT_BUDGET_BYTES, EventLog
from codex_orchestrator.records.manifest import FINAL_CALL_STATUSES, InstanceState, RunState
from codex_orchestrator.records.paths import RUNS_DIRNAME, new_run_id, validate_task_id
from codex_orchestrator.records.store import RunRef, RunStore
from codex_orchestrator.request import FetchSettings, InstanceSettings, RetrySettings, RunRequest, Step
from codex_orchestrator.run import EXIT_FAILED, EXIT_OK, RunOwner, run_outcome
from codex_orchestrator.sandbox import SandboxMode
from codex_orchestrator.telemetry import current_traceparent
from codex_orchestrator.telemetry.vocabulary import MODE, RunMode, SpanName
from codex_orchestrator.toolcall import call_id_for
from flows.interrupt import shutdown
from flows.task_submit import Deferred, WorkerFuture, submit_deferred, when_done
from flows.tracing import span_in_run
from tasks.tool_call import by_value, tool_call

UNLIMITED_LOCAL = InstanceSettings(max_concurrency=256)
# How often the step loop looks for calls lost with their task worker, and (a safety net: their ends are called
# back) at its futures' states, each an API read.
_POLL_S = 1.0
_STATE_POLL_S = 10.0


class GatedRun:
    """A run whose tool calls are Prefect tasks passing the gate. Open one with ``gated_run`` (or, inside the
    autonomy flow, around the run it already owns)."""

    def __init__(
        self,
        ref: RunRef,
        *,
        gate: GateSettings,
        retry: RetrySettings | None = None,
        secret_env: Sequence[str] = (),
        milestone: str = "exec",
        fetch: FetchSettings | None = None,
        output_budget_bytes: int = DEFAULT_OUTPUT_BUDGET_BYTES,
        instances: Sequence[InstanceSettings] = (),
        notifications: Sequence[NotificationTarget] = (),
        hooks: HookSettings | None = None,
        otel_export: bool = True,
        task_workers: bool = False,
    ) -> None:
        self.ref = ref
        self.notifications = list(notifications)
        self.hooks = hooks or HookSettings()
        self.otel_export = otel_export
        # Calls go to Prefect task workers (their own processes, maybe other machines) instead of this
        # flow's task runner; each such call is claimed once per this run's submission scope.
        self.task_workers = task_workers
        self.claim_scope = uuid.uuid4().hex[:12] if task_workers else None
        self._requeued: set[tuple[str, str]] = set()
        self.gate = gate
        self.retry = retry or RetrySettings()
        self.secret_env = list(secret_env)
        self.milestone = milestone
        self.fetch_settings = fetch or FetchSettings()
        self.output_budget_bytes = output_budget_bytes
        self.futures: dict[str, PrefectFuture[Any]] = {}
        self._steps: dict[str, Step] = {}
        # Declared instances hold their limits in Prefect global concurrency limits, shared by every run.
        # Without declared instances, this machine alone, limited only by the run's max_parallel.
        self.instances: list[InstanceSettings] = list(instances) or [UNLIMITED_LOCAL]
        self.shared_limits = bool(instances)
        if self.shared_limits:
            _ensure_instance_limits(self.instances)
        self._local_runner: ThreadPoolTaskRunner[Any] | None = None

    # -- building calls -------------------------------------------------------------------------------------
    def call_input(
        self, step: Step, milestone: str | None = None, instance: InstanceSettings | None = None
    ) -> CallInput:
        milestone = milestone or self.milestone
        return CallInput(
            instance=instance or self.instances[0],
            hold_instance_slot=self.shared_limits,
            run=self.ref,
            call_id=call_id_for(milestone, step.name),
            milestone=milestone,
            step=step,
            gate=self.gate,
            default_retry=self.retry,
            secret_env=self.secret_env,
            fetch=self.fetch_settings,
            output_budget_bytes=self.output_budget_bytes,
            notifications=self.notifications,
            hooks=self.hooks,
            traceparent=current_traceparent(),  # the milestone's span: a call on a worker joins the trace
            otel_export=self.otel_export,
            claim_scope=self.claim_scope,
        )

    def submit(
        self,
        step: Step,
        *,
        wait_for: Sequence[PrefectFuture[Any]] = (),
        milestone: str | None = None,
        instance: InstanceSettings | None = None,
    ) -> PrefectFuture[Any]:
        """Submit one gated call; its future is also kept under the step's name (a call placed again on
        another instance, after its host was lost, replaces it)."""
        if step.name in self.futures and instance is None:
            raise ValueError(f"a call named {step.name!r} was already submitted in this run")
        return self._submit_many([(step, list(wait_for), milestone, instance)])[0]

    def _submit_many(
        self, items: Sequence[tuple[Step, list[PrefectFuture[Any]], str | None, InstanceSettings | None]]
    ) -> list[PrefectFuture[Any]]:
        """Submit calls in order; those for task workers are handed out together (flows/task_submit.py)."""
        futures: list[PrefectFuture[Any] | None] = []
        deferred: list[tuple[int, Deferred]] = []
        for step, wait_for, milestone, instance in items:
            self._steps[step.name] = step
            call = self.call_input(step, milestone, instance)
            if step.session is not None:
                # A named shell lives in one process: its calls run in threads of this flow's own process.
                local = self._local()
                futures.append(local.submit(tool_call, {"call": by_value(call, local)}, wait_for=wait_for))
            elif self.task_workers:
                deferred.append((len(futures), Deferred({"call": call}, wait_for)))
                futures.append(None)
            else:
                futures.append(tool_call.submit(by_value(call), wait_for=wait_for))  # type: ignore[call-overload]
        handed_out = submit_deferred(tool_call, [d for _i, d in deferred])
        for (index, _call), distributed in zip(deferred, handed_out, strict=True):
            futures[index] = distributed
        done = [f for f in futures if f is not None]
        for (step, *_rest), future in zip(items, done, strict=True):
            self.futures[step.name] = future
        return done

    def _local(self) -> ThreadPoolTaskRunner[Any]:
        if self._local_runner is None:
            self._local_runner = ThreadPoolTaskRunner(max_workers=1).__enter__()
        return self._local_runner

    def close(self) -> None:
        """Wait for every call and release the local runner (named shells stay until the run ends)."""
        for future in self.futures.values():
            future.wait()
        if self._local_runner is not None:
            self._local_runner.__exit__(None, None, None)
            self._local_runner = None

    def _step(self, name: str, kind: ToolKind, wait_for: Sequence[PrefectFuture[Any]], **fields: Any) -> Any:
        return self.submit(Step(name=name, kind=kind, **fields), wait_for=wait_for)

    def shell(
        self,
        name: str,
        command: str | list[str],
        *,
        wait_for: Sequence[PrefectFuture[Any]] = (),
        **fields: Any,
    ) -> PrefectFuture[Any]:
        return self._step(name, ToolKind.SHELL, wait_for, command=command, **fields)  # type: ignore[no-any-return]

    def agent(
        self,
        name: str,
        command: str | list[str],
        *,
        wait_for: Sequence[PrefectFuture[Any]] = (),
        **fields: Any,
    ) -> PrefectFuture[Any]:
        return self._step(name, ToolKind.AGENT, wait_for, command=command, **fields)  # type: ignore[no-any-return]

    def codex(
        self,
        name: str,
        prompt: str,
        *,
        codex_config: dict[str, str | int | float | bool] | None = None,
        wait_for: Sequence[PrefectFuture[Any]] = (),
        **fields: Any,
    ) -> PrefectFuture[Any]:
        """An agent step driving codex: each command and patch it asks for is a gated call of this run."""
        return self._step(  # type: ignore[no-any-return]
            name,
            ToolKind.AGENT,
            wait_for,
            agent="codex",
            prompt=prompt,
            codex_config=codex_config or {},
            **fields,
        )

    def edit(
        self,
        name: str,
        *,
        path: str,
        content: str,
        wait_for: Sequence[PrefectFuture[Any]] = (),
        **fields: Any,
    ) -> PrefectFuture[Any]:
        return self._step(name, ToolKind.EDIT, wait_for, path=path, content=content, **fields)  # type: ignore[no-any-return]

    def fetch(
        self, name: str, url: str, *, wait_for: Sequence[PrefectFuture[Any]] = (), **fields: Any
    ) -> PrefectFuture[Any]:
        return self._step(name, ToolKind.FETCH, wait_for, url=url, **fields)  # type: ignore[no-any-return]

    def succeeded(self) -> bool:
        return all(f.state.is_completed() for f in self.futures.values())

    # -- a step graph ---------------------------------------------------------------------------------------
    def run_steps(self, steps: Sequence[Step], *, max_parallel: int, on_failure: Any, milestone: str) -> bool:
        """Run ``steps`` as their ``needs`` graph: independent steps at once (at most ``max_parallel``),
        dependants after their needs succeeded, skips recorded. Returns whether every step succeeded."""
        by_name = {s.name: s for s in steps}
        scheduler = GraphScheduler(
            [s.name for s in steps],
            {s.name: s.needs for s in steps},
            max_parallel=max_parallel,
            on_failure=on_failure,
        )
        store = RunStore(self.ref)
        for step in steps:  # a resumed run: what already succeeded is not run again
            prior = store.read_call(call_id_for(milestone, step.name))
            if prior is not None and prior.status == "succeeded":
                self._skip_all(scheduler.mark(step.name, StepState.SUCCEEDED), by_name, milestone)
        try:
            return self._drive(scheduler, by_name, milestone)
        except TerminationSignal as exc:
            # Prefect turned SIGTERM into an exception here; unwinding its engine would wait forever for a
            # call paused on an approval. End the process as a Ctrl-C does.
            shutdown(exc.signal)
            raise

    def _drive(self, scheduler: GraphScheduler, by_name: dict[str, Step], milestone: str) -> bool:
        done: queue.Queue[str] = queue.Queue()
        running: dict[str, tuple[PrefectFuture[Any], InstanceSettings]] = {}
        placement = Placement(self.instances)
        store = RunStore(self.ref)
        batch: list[tuple[Step, InstanceSettings]] = []
        next_state_poll = time.monotonic() + _STATE_POLL_S
        while not scheduler.done():
            for name in scheduler.ready():
                step = by_name[name]
                try:
                    instance = placement.choose(step)
                except NoInstance as exc:
                    self._fail_unplaced(step, milestone, str(exc))
                    self._skip_all(scheduler.finish(name, False), by_name, milestone)
                    continue
                if instance is None:
                    continue  # every instance that fits is full: the step waits for a slot
                scheduler.start(name)
                batch.append((step, instance))
            for step, instance, future in self._submit_batch(batch, milestone):
                running[step.name] = (future, instance)
                _watch(future, done, step.name)
            batch.clear()
            if not running:
                break
            try:
                finished = [done.get(timeout=_POLL_S)]
            except queue.Empty:
                finished = []
                if time.monotonic() >= next_state_poll:  # a safety net: ends are called back
                    next_state_poll = time.monotonic() + _STATE_POLL_S
                    finished = [n for n, (f, _i) in running.items() if _is_final(f)]
                for name in self._lost_to_dead_workers(store, running, milestone):
                    lost, instance = running[name]
                    _crash(lost, "its task worker died: the call was submitted again")
                    future = self.submit(by_name[name], milestone=milestone, instance=instance)
                    running[name] = (future, instance)
                    _watch(future, done, name)
            for name in finished:
                entry = running.get(name)
                if entry is None or (self.task_workers and not _is_final(entry[0])):
                    continue  # the wake-up of a call's lost copy: the loop waits for the one submitted again
                future, instance = running.pop(name)
                future.wait()
                placement.release(instance.name)
                ok = future.state.is_completed()
                if not ok and self._lost_host(store, placement, milestone, name, instance):
                    scheduler.state[name] = StepState.PENDING  # placed again, on an instance that is up
                    continue
                self._skip_all(scheduler.finish(name, ok), by_name, milestone)
        return scheduler.succeeded()

    def _submit_batch(
        self, batch: Sequence[tuple[Step, InstanceSettings]], milestone: str
    ) -> list[tuple[Step, InstanceSettings, PrefectFuture[Any]]]:
        """Submit the steps that became ready together (to task workers: in one hand-out)."""
        futures = self._submit_many(
            [
                (step, [self.futures[d] for d in step.needs if d in self.futures], milestone, instance)
                for step, instance in batch
            ]
        )
        return [(step, instance, future) for (step, instance), future in zip(batch, futures, strict=True)]

    def _lost_to_dead_workers(
        self, store: RunStore, running: dict[str, tuple[PrefectFuture[Any], InstanceSettings]], milestone: str
    ) -> list[str]:
        """Task-worker calls to submit again because the worker that took them died: the call it was running
        (its record names the dead process) and, once a death is seen, the calls no worker has started (the
        dead one may have taken them). Each is resubmitted once per dead worker; its claim lets one run it."""
        if not self.task_workers:
            return []
        records = {n: store.read_call(call_id_for(milestone, n)) for n in running}
        dead = {
            r.host
            for r in records.values()
            if r is not None and r.host and r.status not in FINAL_CALL_STATUSES and process_gone(r.host)
        }
        lost = []
        for name, record in records.items():
            if record is not None and record.status in FINAL_CALL_STATUSES:
                continue
            for host in sorted(dead):
                if (record is None or record.host == host) and (name, host) not in self._requeued:
                    self._requeued.add((name, host))
                    lost.append(name)
                    break
        return lost

    def _lost_host(
        self, store: RunStore, placement: Placement, milestone: str, name: str, instance: InstanceSettings
    ) -> bool:
        """A call failed because its SSH host went away: mark the host down; True if the call may go elsewhere."""
        record = store.read_call(call_id_for(milestone, name))
        if record is None or record.failure not in SSH_FAILURES or instance.ssh is None:
            return False
        why = record.error or record.failure or "connection lost"
        if instance.name not in placement.down:
            placement.mark_down(instance.name, why)
            _record_instance_down(store, instance.name, why)
        try:
            return bool(placement.candidates(self._steps[name]))
        except KeyError:
            return False

    def _fail_unplaced(self, step: Step, milestone: str, reason: str) -> None:
        record_unplaced(
            self.ref, call_id_for(milestone, step.name), milestone, step, reason, secret_env=self.secret_env
        )

    def _skip_all(self, skips: Sequence[Any], by_name: dict[str, Step], milestone: str) -> None:
        for skip in skips:
            record_skipped(
                self.ref,
                call_id_for(milestone, skip.step),
                milestone,
                by_name[skip.step],
                skip.reason,
                secret_env=self.secret_env,
            )


def _ensure_instance_limits(instances: Sequence[InstanceSettings]) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for instance in instances:
            client.upsert_global_concurrency_limit_by_name(
                instance_limit_name(instance.name), instance.max_concurrency
            )


def _record_instance_down(store: RunStore, name: str, why: str) -> None:
    def change(state: RunState) -> None:
        known = {i.name: i for i in state.instances}
        known[name] = InstanceState(name=name, status="down", reason=why)
        state.instances = [known[n] for n in sorted(known)]

    store.update_run(change)
    events = EventLog(store.paths.events, store.ref.run_id)
    try:
        events.emit(ev.InstanceDown(instance=name, reason=why))
    finally:
        events.close()


def _crash(future: PrefectFuture[Any], why: str) -> None:
    """Mark a task run that no live process will finish Crashed, so that the UI does not show it running."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    with get_client(sync_client=True) as client:
        client.set_task_run_state(future.task_run_id, Crashed(message=why), force=True)


def _watch(future: PrefectFuture[Any], done: queue.Queue[str], name: str) -> None:
    """Wake the step loop when ``future`` is done. A task worker's future has no working done-callbacks in
    Prefect 3.9: Prefect's task-run waiter, listening for the end events, calls back instead."""
    if isinstance(future, WorkerFuture):
        when_done(future, lambda: done.put(name))
    else:
        future.add_done_callback(_notify(done, name))


def _is_final(future: PrefectFuture[Any]) -> bool:
    """Whether the call has ended; a task worker's future keeps the final state once seen (one API read)."""
    if isinstance(future, WorkerFuture):
        return future.settle()
    return future.state.is_final()


def _notify(done: queue.Queue[str], name: str) -> Any:
    def callback(_future: PrefectFuture[Any]) -> None:
        done.put(name)

    return callback


def gated_run_from_request(ref: RunRef, request: RunRequest, milestone: str = "exec") -> GatedRun:
    return GatedRun(
        ref,
        gate=GateSettings.from_request(request),
        retry=request.retry,
        secret_env=request.secret_env,
        milestone=milestone,
        fetch=request.fetch,
        output_budget_bytes=request.event_output_budget_bytes,
        instances=request.instances,
        notifications=request.notifications,
        hooks=request.hooks,
        otel_export=request.telemetry.export,
        task_workers=request.runner.kind == "task-workers",
    )


@contextmanager
def gated_run(
    *,
    task: str,
    workspace: str | Path,
    policy: ApprovalPolicy | str = ApprovalPolicy.ON_REQUEST,
    profile: Sequence[Capability | str] = (Capability.READ,),
    sandbox: SandboxMode | str = SandboxMode.WORKSPACE_WRITE,
    secret_env: Sequence[str] = (),
    run_id: str | None = None,
    runs_dir: str | Path | None = None,
    approval_timeout_s: int = 3600,
    goal: str = "",
    notifications: Sequence[NotificationTarget] = (),
    hooks: HookSettings | None = None,
) -> Iterator[GatedRun]:
    """Open a run of gated tool calls inside the current flow; on exit its status follows its calls.
    ``notifications`` and ``hooks`` are a request's sections of the same names (docs/instructions.md)."""
    root = Path(workspace).resolve()
    ref = RunRef(
        run_id=run_id or new_run_id(),
        task_id=validate_task_id(task),
        runs_dir=str(Path(runs_dir).resolve() if runs_dir else root / RUNS_DIRNAME),
        workspace=str(root),
    )
    gate = GateSettings(
        policy=ApprovalPolicy(policy),
        profile=[Capability(c) for c in profile],
        sandbox=SandboxMode(sandbox),
        approval_timeout_s=approval_timeout_s,
    )
    secrets = read_secrets(secret_env)
    owner = RunOwner.create(
        ref,
        request={
            "api": "workflow",
            "task": task,
            "goal": goal,
            "gate": gate.model_dump(mode="json"),
            "notifications": [t.model_dump(mode="json") for t in notifications],
        },
        goal=goal,
        secrets=secrets.values(),
        with_milestones=False,
    )
    _record_prefect(owner)
    owner.start()
    run = GatedRun(ref, gate=gate, secret_env=secret_env, notifications=notifications, hooks=hooks)
    run_span = span_in_run(owner.tracer, SpanName.RUN, **{MODE: RunMode.WORKFLOW.value})
    run_span.__enter__()  # exited below, so the code keeps its shape
    try:
        yield run
        run.close()
    except BaseException as exc:
        owner.finish("failed", EXIT_FAILED, error=f"{type(exc).__name__}: {exc}")
        run_span.__exit__(None, None, None)
        raise
    finally:
        close_run_sessions(ref.run_id)
    status = run_outcome(owner.manifest())
    owner.finish(status, EXIT_OK if status == "succeeded" else EXIT_FAILED)
    run_span.__exit__(None, None, None)


def _record_prefect(owner: RunOwner) -> None:
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    owner.set_prefect(
        api_url=api_url, parent_flow_run_id=str(ctx.flow_run.id) if ctx and ctx.flow_run else None
    )
