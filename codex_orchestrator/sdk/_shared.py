"""What the blocking and async SDK share, free of process I/O: each command's argv (``ClientBase``), the checked
event stream (``EventStream``), summaries read from events or the manifest, ``SdkError`` and the option types.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict, TypeVar

from codex_orchestrator.errors import OrchestratorError, RequestError
from codex_orchestrator.records.paths import RUNS_DIRNAME, RunPaths, new_run_id

DEFAULT_EXECUTABLE: tuple[str, ...] = (sys.executable, "-m", "codex_orchestrator.cli")
# How much of the CLI's stderr an SdkError keeps (Prefect can log a lot; the cause is at the end).
STDERR_TAIL_BYTES = 8192
# kill(): SIGINT lets the CLI record the run as ended and stop its command; SIGKILL follows after this long.
KILL_GRACE_S = 10.0
# After the CLI exits, how long its pipes may take to reach EOF (a grandchild might still hold them).
STREAM_DRAIN_S = 5.0
# `approve` waits up to 30 s for the flow run to finish pausing; leave room for Prefect's start-up on top.
APPROVE_TIMEOUT_S = 120.0

Approver = Literal["none", "prefect", "auto"]
Event = dict[str, Any]
S = TypeVar("S")  # the summary a handle's wait() returns: ExecSummary or RunSummary


class SdkError(OrchestratorError):
    """The CLI could not do what was asked. ``return_code`` is its exit status (None if it never ran or is
    still running) and ``stderr_tail`` the end of what it printed on stderr."""

    def __init__(self, message: str, *, return_code: int | None = None, stderr_tail: str = "") -> None:
        self.return_code = return_code
        self.stderr_tail = stderr_tail
        super().__init__(message)


class ExecOptions(TypedDict, total=False):
    """Keyword options of ``Client.exec``/``AsyncClient.exec``: each is one ``exec`` option (docs/cli.md).

    Anything left out keeps the CLI's default, except ``approver``, which is ``"none"`` here: code has no
    terminal to ask at, so a call that needs approval is denied unless you choose ``"prefect"`` (pause and
    wait for ``approve``) or ``"auto"`` (pause only when the call needs approval up front). ``run_id``
    defaults to a fresh id chosen here, so a handle knows its run before the CLI prints anything.
    ``extra_args`` go before ``--`` verbatim; they must not change where records go.
    """

    cwd: str | Path
    workspace: str | Path
    task: str
    run_id: str
    runs_dir: str | Path
    policy: str
    profile: str | Sequence[str]
    needs: str | Sequence[str]
    sandbox: str
    timeout_s: float
    retries: int
    ask: bool
    approver: Approver
    approval_timeout_s: int
    ssh: str
    host: str
    identity_file: str | Path
    known_hosts: str | Path
    trust_on_first_use: bool
    env: Mapping[str, str]
    secret_env: Sequence[str]
    gate: bool
    stdin: bool
    extra_args: Sequence[str]


_EXEC_KEYS = ExecOptions.__optional_keys__ | ExecOptions.__required_keys__
# ExecOptions keys that are one `--option VALUE` each; paths among them are made absolute first.
_EXEC_VALUES = {
    "cwd": "--cwd",
    "workspace": "--workspace",
    "task": "--task",
    "runs_dir": "--runs-dir",
    "policy": "--policy",
    "sandbox": "--sandbox",
    "timeout_s": "--timeout",
    "retries": "--retries",
    "approval_timeout_s": "--approval-timeout",
    "ssh": "--ssh",
    "host": "--host",
    "identity_file": "--identity-file",
    "known_hosts": "--known-hosts",
}
_EXEC_PATHS = frozenset({"cwd", "workspace", "runs_dir", "identity_file", "known_hosts"})
_EXEC_FLAGS = {"ask": "--ask", "trust_on_first_use": "--trust-on-first-use", "stdin": "--stdin"}
_EXEC_LISTS = {"profile": "--profile", "needs": "--needs"}  # comma-separated on the command line


@dataclass(frozen=True)
class ExecSummary:
    """How an ``exec`` ended: its ``summary`` event, plus the CLI process's own return code.

    ``status`` is succeeded, failed, denied or timed-out; ``exit_code`` is the command's own (None when it
    never ran); ``return_code`` is what the CLI exited with (the command's code, 124, 125 or 127).
    """

    status: str
    exit_code: int | None
    attempts: int
    approval_source: str
    sandbox_state: str
    manifest: Path
    duration_ms: float
    run_id: str
    return_code: int

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class RunSummary:
    """How a ``run`` ended, read from its manifest: status succeeded, failed or denied; ``exit_code`` 0 or 1."""

    status: str
    exit_code: int | None
    manifest: Path
    run_id: str
    return_code: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


# -- what to start, and how to read what it prints ------------------------------------------------------------
@dataclass(frozen=True)
class Launch:
    command: tuple[str, ...]
    env: dict[str, str]
    cwd: Path | None


@dataclass(frozen=True)
class Plan:
    """One CLI process to start, and where its run's records will be."""

    what: str
    launch: Launch
    stdin: bool
    run_id: str
    workspace: Path
    runs_dir: Path
    manifest: Path


class EventStream:
    """The CLI's stdout as events (each a JSON object with type, seq, ts; seq counts up from 1), and its stderr."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.summary: Event | None = None
        self.failure: SdkError | None = None
        self.eof = False
        self._stderr = bytearray()

    def feed(self, raw: bytes) -> None:
        if self.failure is not None:  # keep draining so the CLI never blocks on a full pipe
            return
        try:
            event = _parse_event(raw, expected_seq=len(self.events) + 1)
        except SdkError as exc:
            self.failure = exc
            return
        if event is not None:
            self.events.append(event)
            # Found by its type, not its place: the summary may come before or after run.finished.
            if event["type"] == "summary":
                self.summary = event

    def feed_stderr(self, chunk: bytes) -> None:
        self._stderr += chunk
        del self._stderr[:-STDERR_TAIL_BYTES]

    @property
    def stderr_tail(self) -> str:
        return self._stderr.decode("utf-8", errors="replace")

    def ready(self, index: int) -> bool:
        """Whether ``take(index)`` can answer without waiting."""
        return index < len(self.events) or self.eof or self.failure is not None

    def take(self, index: int) -> Event | None:
        """Event ``index``; None at the end of the stream; the protocol error once the good events are out."""
        if index < len(self.events):
            return self.events[index]
        if self.failure is not None:
            raise self.failure
        return None

    def cli_error(self, message: str, return_code: int | None) -> SdkError:
        tail = self.stderr_tail
        headline = _headline(tail)
        status = f" (exit {return_code})" if return_code is not None else ""
        return SdkError(
            f"{message}{status}" + (f": {headline}" if headline else ""),
            return_code=return_code,
            stderr_tail=tail,
        )


def _parse_event(raw: bytes, *, expected_seq: int) -> Event | None:
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise SdkError(f"the CLI printed a line that is not a JSON event: {text[:200]!r}") from exc
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("type"), str)
        or not isinstance(event.get("ts"), str)
        or type(event.get("seq")) is not int
    ):
        raise SdkError(f"malformed event (every event has type, seq and ts): {text[:200]!r}")
    _check_schema_version(event.get("schema_version"))
    if event["seq"] != expected_seq:
        raise SdkError(f"event out of order: seq {event['seq']} arrived where {expected_seq} was due")
    return event


@functools.cache
def _known_schema_version() -> str:
    from codex_orchestrator.records.events import EVENTS_SCHEMA_VERSION  # pydantic: only once events flow

    return EVENTS_SCHEMA_VERSION


def _check_schema_version(found: object) -> None:
    """Refuse a stream of another major version: its fields may mean something else (docs/events.md)."""
    known = _known_schema_version()
    major = known.split(".", 1)[0]
    if isinstance(found, str) and found.split(".", 1)[0] == major:
        return
    what = f"schema version {found}" if isinstance(found, str) else "no schema_version (older than 1.0)"
    raise SdkError(
        f"the CLI's events have {what}, but this SDK reads {major}.x ({known}): "
        "use a codex-orchestrator CLI and SDK of the same major version"
    )


def _headline(stderr: str) -> str:
    """The line of stderr that names the problem: the CLI's own last message, else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    own = [line for line in lines if line.startswith("codex-orchestrator")]
    return (own or lines or [""])[-1]


def exec_summary(plan: Plan, stream: EventStream, return_code: int) -> ExecSummary:
    from pydantic import ValidationError

    from codex_orchestrator.records.events import Summary

    if stream.failure is not None:
        raise stream.failure
    if stream.summary is None:
        what = "ended without a summary" if stream.events else "did not start"
        raise stream.cli_error(f"exec {plan.run_id} {what}", return_code)
    try:
        summary = Summary.model_validate(stream.summary)
    except ValidationError as exc:
        raise SdkError(f"malformed summary event: {exc}", return_code=return_code) from exc
    return ExecSummary(
        status=summary.status,
        exit_code=summary.exit_code,
        attempts=summary.attempts,
        approval_source=summary.approval_source,
        sandbox_state=summary.sandbox_state,
        manifest=plan.workspace / summary.manifest,  # records give it workspace-relative
        duration_ms=summary.duration_ms,
        run_id=summary.run_id or plan.run_id,
        return_code=return_code,
    )


def run_summary(plan: Plan, stream: EventStream, return_code: int) -> RunSummary:
    if stream.failure is not None:
        raise stream.failure
    # No event means the run never started (an id already taken, a usage error): any manifest there is not ours.
    manifest = _read_manifest(plan.manifest) if stream.events else None
    if manifest is None:
        raise stream.cli_error(f"run {plan.run_id} did not start or left no manifest", return_code)
    return RunSummary(
        status=str(manifest.get("status")),
        exit_code=manifest.get("exit_code"),
        manifest=plan.manifest,
        run_id=plan.run_id,
        return_code=return_code,
        error=manifest.get("error"),
    )


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # manifests are replaced atomically: a bad one is really bad
        raise SdkError(f"cannot read the manifest {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SdkError(f"{path} is not a manifest")
    return data


def _pending_approval(plan: Plan) -> dict[str, Any] | None:
    manifest = _read_manifest(plan.manifest)
    pending = manifest.get("pending_approval") if manifest else None
    return pending if isinstance(pending, dict) else None


def as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def no_stdin(plan: Plan) -> SdkError:
    return SdkError(f"{plan.what} {plan.run_id} was started without stdin=True: nothing to write to")


def check_approved(run_id: str, return_code: int, stderr: bytes) -> None:
    if return_code != 0:
        stream = EventStream()
        stream.feed_stderr(stderr)
        raise stream.cli_error(f"could not answer the approval of run {run_id}", return_code)


class ClientBase:
    """What both clients share: which CLI to start, with what environment, and the argv of each command."""

    def __init__(
        self,
        executable: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.executable = tuple(executable) if executable is not None else DEFAULT_EXECUTABLE
        self.env = dict(env or {})
        self.cwd = Path(cwd) if cwd is not None else None
        # Where the records of each run this client started are: `approve(run_id)` finds them without help.
        self._runs_dirs: dict[str, Path] = {}

    def _remember(self, plan: Plan) -> Plan:
        self._runs_dirs[plan.run_id] = Path(plan.runs_dir)
        return plan

    def _abs(self, path: str | Path) -> Path:
        """Relative paths mean what they would to the CLI, which runs in ``cwd``."""
        return (self.cwd or Path.cwd()).resolve() / path

    def _launch(self, args: Sequence[str]) -> Launch:
        env = {**os.environ, **self.env}
        # The event stream is UTF-8 whatever the locale; without this a non-UTF-8 locale breaks --json output.
        env.setdefault("PYTHONIOENCODING", "utf-8")
        return Launch(command=(*self.executable, *args), env=env, cwd=self.cwd)

    def _exec_plan(self, argv: Sequence[str], options: ExecOptions) -> Plan:
        unknown = sorted(set(options) - _EXEC_KEYS)
        if unknown:
            raise TypeError(f"exec() got unexpected options {unknown}; allowed: {sorted(_EXEC_KEYS)}")
        if isinstance(argv, str):
            raise TypeError("exec() takes the command as a list of arguments, e.g. ['sh', '-c', 'make test']")
        opts: dict[str, Any] = dict(options)
        # Over SSH --cwd is a remote path, and the local workspace is where the CLI runs (cli_exec.py).
        remote = bool(opts.get("ssh") or opts.get("host"))
        for key in (_EXEC_PATHS - ({"cwd"} if remote else set())) & opts.keys():
            opts[key] = self._abs(opts[key])
        run_id = opts.pop("run_id", None) or new_run_id()
        args = ["exec", "--json", "--run-id", run_id, "--approver", str(opts.get("approver", "none"))]
        for key, flag in _EXEC_VALUES.items():
            if opts.get(key) is not None:
                args += [flag, str(opts[key])]
        for key, flag in _EXEC_FLAGS.items():
            if opts.get(key):
                args.append(flag)
        for key, flag in _EXEC_LISTS.items():
            value = opts.get(key)
            if value is not None:
                args += [flag, value if isinstance(value, str) else ",".join(str(v) for v in value)]
        for name, value in (opts.get("env") or {}).items():
            args += ["--env", f"{name}={value}"]
        for name in opts.get("secret_env") or ():
            args += ["--secret-env", str(name)]
        if opts.get("gate") is False:
            args.append("--no-gate")
        args += [*(str(a) for a in opts.get("extra_args") or ()), "--", *(str(a) for a in argv)]
        workspace = opts.get("workspace") or (None if remote else opts.get("cwd")) or self._abs(".")
        runs_dir = opts.get("runs_dir") or workspace / RUNS_DIRNAME
        return self._remember(
            Plan(
                what="exec",
                launch=self._launch(args),
                stdin=bool(opts.get("stdin")),
                run_id=run_id,
                workspace=workspace,
                runs_dir=runs_dir,
                manifest=RunPaths(runs_dir, str(opts.get("task") or "exec"), run_id).manifest,
            )
        )

    def _run_plan(self, request_file: str | Path, runs_dir: str | Path | None, run_id: str | None) -> Plan:
        from codex_orchestrator.request import load_request

        path = self._abs(request_file)
        try:  # the CLI's own validation, done here too so the handle knows where the records will be
            request = load_request(path)
        except RequestError as exc:
            raise SdkError(f"invalid request {path}: {exc}") from exc
        run_id = run_id or new_run_id()
        workspace = Path(request.workspace)
        runs = self._abs(runs_dir) if runs_dir is not None else workspace / RUNS_DIRNAME
        args = ["run", "--json", "--no-prompt", "--run-id", run_id, "--runs-dir", str(runs), str(path)]
        return self._remember(
            Plan(
                what="run",
                launch=self._launch(args),
                stdin=False,
                run_id=run_id,
                workspace=workspace,
                runs_dir=runs,
                manifest=RunPaths(runs, request.task, run_id).manifest,
            )
        )

    def _resume_plan(self, run_id: str, runs_dir: str | Path | None) -> Plan:
        """``resume RUN_ID``: the run's records say where it is and what it runs."""
        from codex_orchestrator.records.listing import run_store

        runs = (
            self._abs(runs_dir)
            if runs_dir is not None
            else self._runs_dirs.get(run_id, self._abs(RUNS_DIRNAME))
        )
        try:
            store = run_store(runs, run_id)
        except RequestError as exc:
            raise SdkError(f"cannot resume: {exc}") from exc
        args = ["resume", run_id, "--json", "--no-prompt", "--runs-dir", str(runs)]
        return self._remember(
            Plan(
                what="run",
                launch=self._launch(args),
                stdin=False,
                run_id=run_id,
                workspace=Path(store.ref.workspace),
                runs_dir=runs,
                manifest=store.paths.manifest,
            )
        )

    def _approve_launch(
        self,
        run_id: str,
        deny: bool,
        for_session: bool,
        reason: str | None,
        runs_dir: str | Path | None,
        remember: bool = False,
    ) -> Launch:
        args = ["approve", run_id, "--channel", "sdk"]
        if deny:
            args.append("--deny")
        if for_session:
            args.append("--for-session")
        if remember:
            args.append("--remember")
        if reason is not None:
            args += ["--reason", reason]
        known = self._runs_dirs.get(run_id)
        if runs_dir is not None:
            args += ["--runs-dir", str(self._abs(runs_dir))]
        elif known is not None:
            args += ["--runs-dir", str(known)]
        return self._launch(args)


class HandleBase:
    """What both kinds of handle know without I/O: the run and its records."""

    _plan: Plan
    _stream: EventStream

    @property
    def run_id(self) -> str:
        return self._plan.run_id

    @property
    def manifest_path(self) -> Path:
        """Where the run's manifest is (or will be) written."""
        return self._plan.manifest

    @property
    def runs_dir(self) -> Path:
        """Pass this to ``approve(run_id, runs_dir=...)``."""
        return self._plan.runs_dir

    def pending_approval(self) -> dict[str, Any] | None:
        """The approval the run waits for (its ApprovalRecord from the manifest), or None."""
        return _pending_approval(self._plan)
