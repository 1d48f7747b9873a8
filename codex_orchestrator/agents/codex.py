"""An agent step driven through ``codex app-server``: every command, patch and permission codex asks for is a
tool call of the run, decided by the run's gate.

Flow at a glance (``run_codex_step``):
1. the step itself: recorded as an ``agent`` call; approved like any step (it only starts codex);
2. sandbox: codex app-server runs inside our bubblewrap sandbox (read-only system, writable workspace, private
   /tmp, a pid namespace that dies with the step, no network unless granted), so everything it spawns inherits
   it; its model endpoint is reached through ``bridge.py``. codex itself runs with ``approvalPolicy: untrusted``
   (it asks us before every command and patch) and ``sandbox: danger-full-access`` (ours is the sandbox);
3. thread: ``thread/start``, or ``thread/resume`` of the thread an earlier run of this step left (state.json);
4. turn: ``turn/start`` with the prompt; each approval request is handed to ``run_call`` (a Prefect task run
   under Prefect) on a thread of its own, so a question waiting for a person holds up nothing else; its answer
   goes back with ``respond``; its record finishes when codex reports the item completed;
5. end: ``turn/completed`` decides the step (completed → succeeded; failed/interrupted → failed, one line
   naming the cause); Ctrl-C, SIGTERM or the step's timeout interrupt the turn and end codex within the run's 5 s.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_orchestrator.agents import transcript
from codex_orchestrator.agents.app_server import (
    GatedCodexClient,
    ServerNotification,
    ServerRequest,
    StreamClosed,
    bundled_path_dirs,
    check_protocol,
    config_value,
    launch_argv,
    resolve_binary,
    start_client,
)
from codex_orchestrator.agents.bridge import Endpoint, ModelBridge, endpoint_of
from codex_orchestrator.agents.decisions import inner_command
from codex_orchestrator.agents.errors import (
    AgentCrashed,
    AgentError,
    AgentInterrupted,
    AgentModelError,
    AgentTurnFailed,
    AgentUnavailable,
    model_failure,
)
from codex_orchestrator.agents.gated_call import NAME_MAX_CHARS, AgentCallGate, ItemWaiters, record_unasked
from codex_orchestrator.agents.protocol import GATED_METHODS, MCP_ELICITATION, USER_INPUT, decision_answer
from codex_orchestrator.approvals import Approver
from codex_orchestrator.call_recorder import CallRecorder
from codex_orchestrator.gate import GateConfig
from codex_orchestrator.policy import Capability
from codex_orchestrator.records.agent_events import AgentEvent
from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.sandbox import SandboxMode, SandboxSpec, host_tmp_entries, probe
from codex_orchestrator.telemetry.agent import AgentTelemetry

if TYPE_CHECKING:
    pass

AGENT = "codex"
# How long the driver waits for codex to answer ``initialize``, ``thread/*`` and ``turn/start``.
STARTUP_TIMEOUT_S = 60.0
# After ``turn/interrupt``: how long codex has to end the turn before it is ended for it.
INTERRUPT_WAIT_S = 1.0
# Between SIGTERM and SIGKILL of codex's sandbox.
KILL_GRACE_S = 1.0
# The inbox is read in slices this long, so a stop (signal, timeout) is seen promptly.
_POLL_S = 0.05
# The default model endpoint when a request names none (codex's built-in `openai` provider).
OPENAI_BASE_URL = "https://api.openai.com/v1"

# A run function for one agent tool call: ``run_call(name, work)`` runs ``work`` (e.g. as a Prefect task run
# named ``name``) in the calling thread and returns when it has.
CallRunner = Callable[[str, Callable[[], ToolCallRecord]], object]


def run_directly(_name: str, work: Callable[[], ToolCallRecord]) -> object:
    return work()


@dataclass(frozen=True)
class CodexStep:
    """An agent step, by value. ``secrets`` holds values read in this process (never recorded)."""

    call_id: str
    step: str
    milestone: str
    prompt: str
    workspace: Path
    cwd: Path
    agent_dir: Path  # <run dir>/agents/<call id>: codex's home and our state.json
    gate: GateConfig
    codex_config: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    codex_bin: str | None = None
    timeout_s: float = 600.0
    declared: frozenset[Capability] = frozenset()
    approval_required: bool = False
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    approval_policy_override: str | None = None  # bench only: codex's own policy (e.g. "never"), gate out


class _Stop:
    """Why the step must stop now (set from a signal handler's thread or the timeout)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.why = ""

    def set(self, why: str) -> None:
        if not self.event.is_set():
            self.why = why
            self.event.set()


# Live drivers of this process, for ``interrupt_every_agent`` (flows/interrupt.py calls it on SIGINT/SIGTERM).
_LIVE: set[CodexDriver] = set()
_LIVE_LOCK = threading.Lock()


def interrupt_every_agent(why: str, wait_s: float = 3.0) -> None:
    """Stop every agent step of this process (turn/interrupt, codex ended) and wait up to ``wait_s`` for their
    records to be written."""
    with _LIVE_LOCK:
        drivers = list(_LIVE)
    for driver in drivers:
        driver.stop.set(why)
    deadline = time.monotonic() + wait_s
    for driver in drivers:
        driver.done.wait(max(0.0, deadline - time.monotonic()))


class CodexDriver:
    """One agent step's codex session (see the module docstring)."""

    def __init__(
        self, step: CodexStep, recorder: CallRecorder, approver: Approver, run_call: CallRunner
    ) -> None:
        self.step = step
        self.recorder = recorder
        self.approver = approver
        self.run_call = run_call
        self.stop = _Stop()
        self.done = threading.Event()
        self.client: GatedCodexClient | None = None
        self.bridge: ModelBridge | None = None
        self.version = ""
        self.thread_id = ""
        self.turn_id = ""
        self.turns = 0
        self.waiters = ItemWaiters()
        self.telemetry: AgentTelemetry | None = None  # made in run(), inside the step's span
        self.workers: list[threading.Thread] = []
        self.round_trips_ms: list[
            float
        ] = []  # request received → answer sent, for calls nobody was asked about
        self.counts: dict[str, int] = {}
        self.file_changes: dict[str, dict[str, Any]] = {}
        self.asked: set[str] = set()  # item ids codex asked us about
        self.session_grants: set[str] = set()  # calls answered acceptForSession (codex will not ask again)
        self.last_error: dict[str, Any] = {}  # codex's last `error` notification (TurnError)
        self._socket_dir: Path | None = None

    # -- the step -------------------------------------------------------------------------------------------
    def run(self, record: ToolCallRecord) -> None:
        """Drive codex to the end of one turn; raises AgentError (or subclass) naming why it did not complete."""
        with _LIVE_LOCK:
            _LIVE.add(self)
        step = self.step
        tracer = self.recorder.tracer
        try:
            # The step's span: its turns nest under it, and the agent's own calls under the open turn.
            with tracer.span(
                "tool_call",
                **{"codex.tool_call.id": step.call_id, "codex.step": step.step, "codex.tool": "agent"},
            ):
                self.telemetry = AgentTelemetry(tracer, step=step.step, call_id=step.call_id, agent=AGENT)
                try:
                    self._start()
                    self._turn()
                finally:
                    self.telemetry.close()
        finally:
            self._close()
            with _LIVE_LOCK:
                _LIVE.discard(self)
            record.session_id = self.thread_id or None
            self.done.set()

    def _emit(self, event: AgentEvent) -> None:
        """Log one agent event, and let the turn's span and metrics see it."""
        self.recorder.events.emit(event)
        if self.telemetry is not None:
            self.telemetry.observe(event)

    def _start(self) -> None:
        step = self.step
        binary = resolve_binary(step.codex_bin)
        home = step.agent_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        _scrub_home(home)
        if step.codex_bin is not None:
            check_protocol(binary, step.agent_dir)
        network = Capability.NETWORK in (step.gate.profile | step.declared)
        sandbox, endpoint = self._sandbox(network, home)
        overrides = [f"{k}={config_value(v)}" for k, v in step.codex_config.items()]
        if step.secrets:  # the model's key is codex's; the agent's commands do not get it
            overrides.append(f"shell_environment_policy.exclude={json.dumps(sorted(step.secrets))}")
        env = {
            "PATH": os.pathsep.join([*bundled_path_dirs(), os.environ.get("PATH", "/usr/bin:/bin")]),
            "HOME": os.environ.get("HOME", str(home)),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "NO_COLOR": "1",
            "PAGER": "cat",
            "CODEX_HOME": str(home),
            **step.secrets,
        }
        if endpoint is not None and endpoint.via_proxy:  # a remote endpoint: CONNECT through the bridge
            host, port = endpoint.inside_listen
            env["HTTPS_PROXY"] = env["https_proxy"] = f"http://{host}:{port}"
        argv = launch_argv(
            binary,
            overrides,
            sandbox=sandbox,
            endpoint=endpoint,
            bridge_socket=self.bridge.socket_path if self.bridge is not None else None,
            keep_env=list(env),
        )
        self.client = client = start_client(argv, cwd=step.cwd, env=env)
        init = self._request(lambda: client.initialize(), "initialize")
        self.version = _version_of(init.userAgent or "")
        policy = step.approval_policy_override or "untrusted"
        params: dict[str, Any] = {
            "cwd": str(step.cwd),
            "approvalPolicy": policy,
            "sandbox": "danger-full-access",
        }
        state = _read_state(step.agent_dir)
        resumed = bool(state.get("thread_id"))
        if resumed:
            thread = self._request(
                lambda: client.thread_resume(str(state["thread_id"]), params), "thread/resume"
            )
        else:
            thread = self._request(lambda: client.thread_start(params), "thread/start")
        self.thread_id = thread.thread.id
        _write_state(step.agent_dir, {"thread_id": self.thread_id, "codex_version": self.version})
        self._emit(
            transcript.started(
                step=step.step,
                call_id=step.call_id,
                agent=AGENT,
                agent_version=self.version,
                thread_id=self.thread_id,
                resumed=resumed,
            )
        )

    def _sandbox(self, network: bool, home: Path) -> tuple[SandboxSpec | None, Endpoint | None]:
        """Our sandbox around codex (None: the run asked for none); the endpoint to relay when it has no net."""
        step = self.step
        if step.gate.sandbox is SandboxMode.NONE or not step.gate.enabled:
            return None, None
        found = probe(step.gate.bwrap_path)
        if not found.available:
            raise AgentUnavailable(
                f"the sandbox is unavailable ({found.detail}); codex does not run without it"
            )
        # Unix socket paths are short (108 bytes): the bridge's lives in a fresh directory of its own.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="codex-bridge-"))
        writable = [home, self._socket_dir]
        readable = [*host_tmp_entries(), step.agent_dir.parents[1]]  # the run's records: read-only inside
        # The workspace's codex config and rules: read-only to the agent (a rule it wrote would decide its next
        # calls), and the rules hidden from codex itself, which would otherwise enforce them without asking us
        # (the gate decides with them: the call is then recorded, and named by the rule that decided).
        dot_codex = step.workspace / ".codex"
        if dot_codex.is_dir():
            readable.append(dot_codex)
        masked = tuple(p for p in (dot_codex / "rules",) if p.is_dir())
        spec = SandboxSpec(
            mode=step.gate.sandbox,
            workspace=step.workspace,
            network=network,
            writable_paths=tuple(writable),
            bwrap_path=step.gate.bwrap_path,
            readable_paths=tuple(
                p for p in readable if p.is_relative_to(step.workspace) or str(p).startswith("/tmp/")
            ),
            masked_paths=masked,
        )
        endpoint = None
        if not network:
            endpoint = endpoint_of(_base_url(step.codex_config))
            self.bridge = ModelBridge(endpoint, self._socket_dir / "model.sock")
        return spec, endpoint

    def _request(self, call: Callable[[], Any], what: str) -> Any:
        """One start-up request; the stream closing on the way is codex failing to start (stderr says why)."""
        result: dict[str, Any] = {}

        def go() -> None:
            try:
                result["value"] = call()
            except BaseException as exc:
                result["error"] = exc

        worker = threading.Thread(target=go, daemon=True)
        worker.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while worker.is_alive():
            worker.join(_POLL_S)
            if self.stop.event.is_set():
                raise AgentInterrupted(f"codex: stopped ({self.stop.why}) during {what}", why=self.stop.why)
            if time.monotonic() > deadline:
                raise AgentCrashed(
                    f"codex did not answer {what} within {STARTUP_TIMEOUT_S:.0f} s", **self._tail()
                )
        if "error" in result:
            exc = result["error"]
            tail = self._tail()["stderr_tail"]
            last = tail.strip().splitlines()[-1] if tail.strip() else f"{type(exc).__name__}: {exc}"
            raise AgentUnavailable(f"codex failed at {what}: {last}", stderr_tail=tail) from exc
        return result["value"]

    # -- the turn -------------------------------------------------------------------------------------------
    def _turn(self) -> None:
        client = self.client
        assert client is not None
        started = self._request(lambda: client.turn_start(self.thread_id, self.step.prompt), "turn/start")
        self.turn_id = started.turn.id
        self.turns += 1
        deadline = time.monotonic() + self.step.timeout_s
        while True:
            if time.monotonic() > deadline:
                self.stop.set("timeout")
            if self.stop.event.is_set():
                self._interrupt()
                raise AgentInterrupted(
                    f"codex: turn interrupted ({_why(self.stop.why, self.step.timeout_s)})",
                    why=self.stop.why,
                    **self._tail(),
                )
            try:
                item = client.inbox.get(timeout=_POLL_S)
            except Exception:  # queue.Empty
                continue
            if isinstance(item, StreamClosed):
                raise self._crashed(item.error)
            if isinstance(item, ServerRequest):
                self._dispatch(item)
                continue
            outcome = self._notification(item)
            if outcome is not None:
                status, error = outcome
                if status == "completed":
                    return
                if status == "interrupted":
                    raise AgentInterrupted("codex: the turn was interrupted", why="interrupt", **self._tail())
                raise self._turn_failure(error)

    def _notification(self, note: ServerNotification) -> tuple[str, dict[str, Any]] | None:
        """Log the notification's events; route item completions; the turn's end as (status, error)."""
        step = self.step
        for event in transcript.from_notification(
            step=step.step,
            call_id=step.call_id,
            method=note.method,
            params=note.params,
            workspace=step.workspace,
        ):
            self._emit(event)
        params = note.params
        if note.method in ("item/started", "item/completed"):
            item = _mapping(params.get("item"))
            if item.get("type") == "fileChange":
                self.file_changes[str(item.get("id"))] = item
            if note.method == "item/completed":
                self.waiters.complete(str(item.get("id")), item)
                # (the bench's baseline runs codex with approval never: nothing is asked, nothing recorded)
                unasked = str(item.get("id")) not in self.asked and self.step.approval_policy_override is None
                if item.get("type") in ("commandExecution", "fileChange") and unasked:
                    name = inner_command(str(item.get("command") or "")) or "apply patch"
                    self._spawn(name[:NAME_MAX_CHARS], item)
        elif note.method == "error":
            self.last_error = _mapping(params.get("error")) or self.last_error
        elif note.method == "turn/completed":
            turn = _mapping(params.get("turn"))
            if turn.get("id") not in (None, self.turn_id):
                return None
            return str(turn.get("status") or "failed"), _mapping(turn.get("error")) or self.last_error
        return None

    def _dispatch(self, request: ServerRequest) -> None:
        """Hand an approval request to its own thread (in a copy of this context: Prefect's run context)."""
        client = self.client
        assert client is not None
        received = time.monotonic()
        if request.method not in GATED_METHODS:
            # Nobody can answer an MCP form or a question for the user here: declined, never accepted.
            if request.method in (MCP_ELICITATION, USER_INPUT):
                client.respond(request.id, decision_answer(request.method, "decline"))
            else:
                client.refuse(request.id, f"{request.method} is not served by codex-orchestrator")
            return
        self.asked.add(str(request.params.get("itemId")))
        gate = AgentCallGate(self, request, received)
        self._spawn(gate.name, None, gate.run)

    def _spawn(
        self, name: str, item: Mapping[str, Any] | None, work: Callable[[], ToolCallRecord] | None = None
    ) -> None:
        """Run one agent call on a thread of its own, in a copy of this context (Prefect's run context)."""
        if work is None:
            assert item is not None
            work = functools.partial(record_unasked, self, item)
        if self.telemetry is not None:
            with self.telemetry.turn_context():  # the call's spans nest under the open turn
                context = contextvars.copy_context()
        else:
            context = contextvars.copy_context()
        worker = threading.Thread(target=context.run, args=(self.run_call, name, work), daemon=True)
        self.workers.append(worker)
        worker.start()

    def _interrupt(self) -> None:
        """turn/interrupt, then wait briefly for the turn to end (codex reports it) — bounded either way."""
        client = self.client
        if client is None or not self.turn_id:
            return
        done = threading.Event()

        def interrupt() -> None:
            with contextlib.suppress(Exception):  # codex may already be gone: it is ended below either way
                client.turn_interrupt(self.thread_id, self.turn_id)
            done.set()

        threading.Thread(target=interrupt, daemon=True).start()
        done.wait(INTERRUPT_WAIT_S)
        deadline = time.monotonic() + INTERRUPT_WAIT_S
        while time.monotonic() < deadline:
            try:
                item = client.inbox.get(timeout=_POLL_S)
            except Exception:
                continue
            if isinstance(item, ServerNotification) and self._notification(item) is not None:
                return
            if isinstance(item, ServerRequest):
                client.respond(item.id, decision_answer(item.method, "cancel"))
            if isinstance(item, StreamClosed):
                return

    def _close(self) -> None:
        """End codex and its sandbox (SIGTERM, then SIGKILL after KILL_GRACE_S); release what waits on it."""
        self.waiters.close("the agent step ended before codex reported the call completed")
        client = self.client
        if client is not None:
            proc = client.process()
            try:
                if proc is not None and proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(KILL_GRACE_S)
                except Exception:
                    proc.kill()
                    proc.wait(KILL_GRACE_S)
            client._proc = None
        if self.bridge is not None:
            self.bridge.close()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        for worker in self.workers:
            worker.join(0.5)  # calls still waiting for a person were answered `cancel` by codex's end

    # -- failures -------------------------------------------------------------------------------------------
    def _tail(self) -> dict[str, str]:
        client = self.client
        return {"stderr_tail": self.recorder.redact(client.stderr_tail()) if client is not None else ""}

    def _crashed(self, error: str) -> AgentError:
        proc = self.client.process() if self.client is not None else None
        code = proc.wait(KILL_GRACE_S) if proc is not None else None
        tail = self._tail()
        last = tail["stderr_tail"].strip().splitlines()[-1:] or [error]
        return AgentCrashed(f"codex crashed (exit code {code}): {last[0]}", **tail)

    def _turn_failure(self, error: Mapping[str, Any]) -> AgentError:
        message = str(error.get("message") or "no reason given")
        cause = model_failure(error.get("codexErrorInfo"), message)
        if cause is not None:
            return AgentModelError(f"codex: the model endpoint failed: {cause}: {message}", **self._tail())
        return AgentTurnFailed(f"codex: the turn failed: {message}", **self._tail())


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _why(why: str, timeout_s: float) -> str:
    return f"the step's timeout of {timeout_s:g} s" if why == "timeout" else why


def _version_of(user_agent: str) -> str:
    """``codex_cli_rs/0.163.0 (...)`` or ``name/0.163.0 ...`` → ``0.163.0``."""
    first = user_agent.split(" ", 1)[0]
    return first.rsplit("/", 1)[-1] if "/" in first else first


def _base_url(config: Mapping[str, object]) -> str:
    provider = str(config.get("model_provider", "openai"))
    url = config.get(f"model_providers.{provider}.base_url")
    if isinstance(url, str) and url:
        return url
    return str(config.get("openai_base_url") or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL)


def _scrub_home(home: Path) -> None:
    """codex's home is writable inside the sandbox: what an agent's command may have left there that would
    change how codex runs (config, rules, MCP servers) is removed before codex starts again."""
    for name in ("config.toml", "rules", "policy", "managed_config.toml", "AGENTS.md", "AGENTS.override.md"):
        path = home / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()


def _read_state(agent_dir: Path) -> dict[str, object]:
    try:
        data = json.loads((agent_dir / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(agent_dir: Path, state: Mapping[str, object]) -> None:
    tmp = agent_dir / "state.json.tmp"
    tmp.write_text(json.dumps(dict(state)))
    tmp.replace(agent_dir / "state.json")
