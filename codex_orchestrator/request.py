"""The run request: what a user writes (YAML or JSON) to ask for an autonomy run, validated strictly."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from codex_orchestrator.documents import check_shape, load_document
from codex_orchestrator.errors import RequestError
from codex_orchestrator.fetch import ALLOWED_SCHEMES, DEFAULT_FETCH_MAX_BYTES, DEFAULT_FETCH_MAX_REDIRECTS
from codex_orchestrator.graph import GraphError, OnFailure, check_graph
from codex_orchestrator.hooks import HookSettings
from codex_orchestrator.instructions import InstructionSettings, load_for_cwds
from codex_orchestrator.notify import NotificationTarget
from codex_orchestrator.policy import ApprovalPolicy, Capability, ToolKind
from codex_orchestrator.records.events import DEFAULT_OUTPUT_BUDGET_BYTES
from codex_orchestrator.records.paths import TASK_ID_ALLOWED, validate_task_id
from codex_orchestrator.redact import MIN_SECRET_LEN
from codex_orchestrator.rules.sources import RulesSettings, load_policy
from codex_orchestrator.sandbox import SandboxMode
from codex_orchestrator.suggest import did_you_mean
from codex_orchestrator.verification.settings import RESERVED_NAMES, VerificationSettings

# Environment switch for the gate rollout (the seed's risk table: "gate ToolOrchestrator behind a feature flag").
GATE_ENV_VAR = "CODEX_ORCHESTRATOR_GATE"
DEFAULT_MAX_PARALLEL = 4

# Size limits per field, in UTF-8 bytes (docs/requests.md), checked before anything runs. A command is
# bounded by Linux's limit on one exec argument (MAX_ARG_STRLEN, 128 KiB); the whole request by Prefect's
# 512 KiB limit on a flow run's parameters, with room for the rest of them.
FIELD_LIMIT_BYTES: dict[str, int] = {
    "goal": 16 * 1024,
    "command": 128 * 1024,
    "content": 256 * 1024,
    "url": 8 * 1024,
    "env": 32 * 1024,  # each name and each value
    "path": 4096,
    "cwd": 4096,
    "prompt": 64 * 1024,
    "codex_config": 4096,  # each key and each value
}
# An agent step's `codex_config`: at most this many overrides; keys are codex's dotted config keys.
MAX_CODEX_CONFIG_ENTRIES = 64
CODEX_CONFIG_KEY = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$"
# Settings the gate owns (agents/codex.py starts codex with them): a request may not loosen them.
GATE_OWNED_CODEX_KEYS = ("approval_policy", "sandbox_mode", "sandbox_workspace_write", "approvals_reviewer")
MAX_REQUEST_BYTES = 384 * 1024


class RetrySettings(BaseModel):
    """Exponential backoff with jitter and a ceiling, applied only to retryable failures."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=3, ge=1, le=20, description="attempts in all, the first included")
    base_delay_s: float = Field(default=0.5, ge=0, le=600, description="delay before the second attempt")
    max_delay_s: float = Field(default=10.0, ge=0, le=3600, description="ceiling for any one delay")
    multiplier: float = Field(default=2.0, ge=1, le=10)
    jitter: float = Field(default=0.2, ge=0, le=1, description="± fraction of each delay drawn at random")
    retry_on_exit_codes: list[int] = Field(
        default=[75], description="exit codes that mean 'try again' (75 = EX_TEMPFAIL)"
    )
    retry_on_timeout: bool = False


class RunnerSettings(BaseModel):
    """Where a run's tool-call tasks execute: threads of the flow's process, or a Dask cluster's workers."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["thread", "dask", "task-workers"] = Field(
        default="thread",
        description="thread (default), dask, or task-workers (Prefect task workers serving the tool-call task: "
        "`prefect task serve -m tasks.tool_call`, on machines that share the records and the workspace)",
    )
    address: str | None = Field(
        default=None, description="dask: an existing scheduler (tcp://host:8786); default a local cluster"
    )
    workers: int = Field(default=2, ge=1, le=64, description="dask: worker processes of the local cluster")


class TelemetrySettings(BaseModel):
    """Whether this run's spans and metrics go to the OTLP endpoint (docs/telemetry.md)."""

    model_config = ConfigDict(extra="forbid")

    export: bool = Field(
        default=True,
        description="false: spans stay in traces.jsonl, nothing is exported (as CODEX_ORCHESTRATOR_OTEL=off)",
    )


class FetchSettings(BaseModel):
    """The fence around fetch steps (codex_orchestrator/fetch.py)."""

    model_config = ConfigDict(extra="forbid")

    allow_hosts: list[str] = Field(
        default_factory=list,
        description="hosts a fetch may reach although they resolve to a loopback, private or link-local address",
    )
    max_bytes: int = Field(default=DEFAULT_FETCH_MAX_BYTES, ge=1, le=1024**3, description="body size limit")
    max_redirects: int = Field(default=DEFAULT_FETCH_MAX_REDIRECTS, ge=0, le=20)


class SshSettings(BaseModel):
    """An SSH host, inline or as the name of a saved ``SshHost`` block (loaded where the call runs)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built when first used

    block: str | None = Field(default=None, description="name of a saved `Codex SSH Host` block")
    host: str | None = None
    port: int = Field(default=22, ge=1, le=65535)
    user: str | None = None
    key_file: str | None = Field(
        default=None, description="private key path on the machine that runs the call"
    )
    known_hosts: str | None = None
    trust_on_first_use: bool = False
    connect_timeout_s: float = Field(default=10.0, gt=0)
    sandbox_command: list[str] = Field(default=[])

    @model_validator(mode="after")
    def _host_or_block(self) -> SshSettings:
        if (self.block is None) == (self.host is None):
            raise ValueError("an SSH instance needs exactly one of 'host' and 'block'")
        return self


class InstanceSettings(BaseModel):
    """Where tool calls may run: this machine, or an SSH host; each with labels and a concurrency limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="local", pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    ssh: SshSettings | None = Field(default=None, description="absent: this machine")
    labels: list[str] = Field(default=[], description="what a step may ask for with `labels`")
    max_concurrency: int = Field(
        default=4, ge=1, le=256, description="calls at once on this instance, in all runs"
    )
    workdir: str | None = Field(
        default=None, description="SSH: the workspace's path on that host (default: the same path as here)"
    )


class Step(BaseModel):
    """One tool call: a shell command, a file edit, a fetch or an agent invocation."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    kind: ToolKind = ToolKind.SHELL
    command: str | list[str] | None = Field(
        default=None, description="shell line, or argv list (shell/agent)"
    )
    path: str | None = Field(default=None, description="file to write, workspace-relative (edit)")
    content: str | None = Field(default=None, description="text to write (edit)")
    append: bool = Field(default=False, description="append instead of replace (edit)")
    url: str | None = Field(default=None, description="URL to fetch (fetch)")
    cwd: str = Field(default=".", description="working directory, workspace-relative")
    env: dict[str, str] = Field(default_factory=dict)
    capabilities: list[Capability] = Field(default_factory=list, description="capabilities declared on top")
    approval: Literal["auto", "required"] = "auto"
    timeout_s: float = Field(default=600.0, gt=0, le=86_400)
    retry: RetrySettings | None = None
    session: str | None = Field(default=None, description="run inside this named, persistent shell session")
    needs: list[str] = Field(
        default_factory=list, description="steps (of the same list) that must succeed before this one starts"
    )
    instance: str | None = Field(default=None, description="run on this instance (see the run's `instances`)")
    labels: list[str] = Field(
        default_factory=list, description="run on an instance that has all these labels"
    )
    agent: Literal["codex"] | None = Field(
        default=None,
        description="agent steps: drive this agent through its protocol, every tool call it makes gated "
        "(codex: `codex app-server`); absent: `command` runs as one opaque call",
    )
    prompt: str | None = Field(default=None, description="agent: what the agent is asked to do")
    codex_config: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="agent codex: overrides passed as codex's own `-c key=value` (model, model_provider, "
        "model_providers.<id>.base_url, ...)",
    )
    codex_bin: str | None = Field(
        default=None, description="agent codex: path of another codex binary (default: the pinned one)"
    )

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Step:
        if self.agent is not None:
            self._check_agent()
        elif self.kind in (ToolKind.SHELL, ToolKind.AGENT) and not self.command:
            raise ValueError(
                f"a {self.kind.value} step needs 'command' (or, for an agent, 'agent' and 'prompt')"
            )
        elif self.prompt is not None or self.codex_config or self.codex_bin is not None:
            raise ValueError("'prompt', 'codex_config' and 'codex_bin' belong to a step with 'agent'")
        if self.kind is ToolKind.EDIT and (not self.path or self.content is None):
            raise ValueError("an edit step needs 'path' and 'content'")
        if self.kind is ToolKind.FETCH and not self.url:
            raise ValueError("a fetch step needs 'url'")
        if self.url is not None and urlsplit(self.url).scheme.lower() not in ALLOWED_SCHEMES:
            raise ValueError(f"url {self.url!r}: only {' and '.join(ALLOWED_SCHEMES)} URLs can be fetched")
        for rel in (self.cwd, self.path):
            if rel is not None and (Path(rel).is_absolute() or ".." in Path(rel).parts):
                raise ValueError(f"{rel!r} must be a path inside the workspace (relative, no '..')")
        return self

    def _check_agent(self) -> None:
        if self.kind is not ToolKind.AGENT:
            raise ValueError("'agent' needs kind: agent")
        if self.command:
            raise ValueError("an agent step has either 'command' (one opaque call) or 'agent' and 'prompt'")
        if not self.prompt or not self.prompt.strip():
            raise ValueError(f"an agent step driving {self.agent} needs a 'prompt'")
        if self.session is not None:
            raise ValueError("an agent step driving codex cannot run in a named shell 'session'")
        if len(self.codex_config) > MAX_CODEX_CONFIG_ENTRIES:
            raise ValueError(
                f"codex_config has {len(self.codex_config)} entries; the limit is {MAX_CODEX_CONFIG_ENTRIES}"
            )
        for key in self.codex_config:
            if not re.match(CODEX_CONFIG_KEY, key):
                raise ValueError(
                    f"codex_config key {key!r} is not a codex config key (letters, digits, _ . -)"
                )
            if key.split(".")[0] in GATE_OWNED_CODEX_KEYS:
                raise ValueError(
                    f"codex_config may not set {key!r}: the gate sets codex's approval policy and sandbox"
                )

    def drives_agent(self) -> bool:
        """Whether this step drives an agent through its protocol (its tool calls gated one by one)."""
        return self.agent is not None


class Guardrail(Step):
    """A guardrail of the verification milestone: a step whose result is recorded (passed, failed, skipped,
    error); a required one must pass for the run to succeed, an advisory one is only reported."""

    model_config = ConfigDict(defer_build=True)  # with Step's; built when first used (`exec` has none)

    required: bool = Field(default=True, description="false: advisory, reported but never fails the run")


class RunRequest(BaseModel):
    """A whole autonomy run: a task in a workspace, its steps, its guardrails and the gate's settings."""

    # defer_build: built by the first request read (`run`), not by every import of this module (`exec`).
    model_config = ConfigDict(extra="forbid", defer_build=True)

    task: str = Field(description=f"task id: {TASK_ID_ALLOWED}")
    workspace: str = Field(
        description="the repository the run works in (absolute, or relative to the request file)"
    )
    goal: str = Field(default="", description="what the run is for, shown in the manifest and the UI")
    approval_policy: ApprovalPolicy = ApprovalPolicy.ON_REQUEST
    # Literal defaults (not factories), so the deployment form in the Prefect UI shows them.
    profile: list[Capability] = Field(
        default=[Capability.READ], description="capabilities granted without asking"
    )
    sandbox: SandboxMode = SandboxMode.WORKSPACE_WRITE
    gate: bool = Field(
        default=True, description="feature flag: false runs calls directly, recorded as not-required"
    )
    approval_timeout_s: int = Field(
        default=3600, ge=1, le=7 * 86_400, description="an unanswered approval is a denial"
    )
    retry: RetrySettings = Field(default=RetrySettings())
    secret_env: list[str] = Field(
        default=[], description="environment variables passed to commands and redacted from records"
    )
    steps: list[Step] = Field(min_length=1)
    guardrails: list[Guardrail] = Field(
        default=[],
        description="commands whose outcome sets the run status (required ones; advisory reported)",
    )
    verification: VerificationSettings = Field(
        default=VerificationSettings(), description="spec-guard, diagnostics and the review gate"
    )
    instructions: InstructionSettings = Field(
        default=InstructionSettings(),
        description="the AGENTS.md hierarchy: fallback_filenames, max_bytes, extra files (a bare list: extra)",
    )
    rules: RulesSettings = Field(
        default=RulesSettings(),
        description="codex exec-policy rules: files (workspace-relative, after $CODEX_HOME/rules and "
        ".codex/rules), include_user, remember_to (a bare list: files)",
    )
    on_instruction_drift: Literal["ignore", "warn", "ask"] = Field(
        default="warn",
        description="instruction files changed since the task's previous run: ignore (record only), warn, or "
        "ask (an approval before the exec milestone starts)",
    )
    notifications: list[NotificationTarget] = Field(
        default=[],
        description="who is told of approvals, the run's end, guard switches (command/block/event)",
    )
    hooks: HookSettings = Field(default=HookSettings(), description="pre_tool_call / post_tool_call commands")
    max_parallel: int = Field(
        default=DEFAULT_MAX_PARALLEL,
        ge=1,
        le=64,
        description="steps without an edge between them run at once",
    )
    instances: list[InstanceSettings] = Field(
        default=[], description="where calls run (default: this machine); steps pick one by name or labels"
    )
    runner: RunnerSettings = Field(default=RunnerSettings())
    on_failure: OnFailure = Field(
        default=OnFailure.STOP,
        description="stop: running calls finish, nothing new starts; continue: only dependants are skipped",
    )
    fetch: FetchSettings = Field(default=FetchSettings())
    telemetry: TelemetrySettings = Field(default=TelemetrySettings())
    event_output_budget_bytes: int = Field(
        default=DEFAULT_OUTPUT_BUDGET_BYTES,
        ge=1024,
        description="per tool call, how much output events.jsonl keeps (head and tail; the rest is counted)",
    )

    @field_validator("instructions", mode="before")
    @classmethod
    def _instructions_list_is_extra(cls, value: Any) -> Any:
        return {"extra": value} if isinstance(value, list) else value

    @field_validator("rules", mode="before")
    @classmethod
    def _rules_list_is_files(cls, value: Any) -> Any:
        return {"files": value} if isinstance(value, list) else value

    def step_cwds(self) -> list[str]:
        """Every distinct working directory of the run's steps and guardrails (instruction sets are per cwd)."""
        return list(dict.fromkeys(s.cwd for s in [*self.steps, *self.guardrails]))

    @field_validator("task")
    @classmethod
    def _task_is_safe(cls, value: str) -> str:
        try:
            return validate_task_id(value)
        except RequestError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _unique_step_names(self) -> RunRequest:
        seen: set[str] = set()
        for step in [*self.steps, *self.guardrails]:
            if step.name in seen:
                raise ValueError(f"step name {step.name!r} is used twice")
            seen.add(step.name)
        for guardrail in self.guardrails:
            if guardrail.name in RESERVED_NAMES:
                raise ValueError(
                    f"guardrail name {guardrail.name!r} is taken by the verification milestone "
                    f"(reserved: {', '.join(sorted(RESERVED_NAMES))})"
                )
        self._check_instances()
        for what, steps in (("steps", self.steps), ("guardrails", self.guardrails)):
            try:
                check_graph([s.name for s in steps], {s.name: s.needs for s in steps})
            except GraphError as exc:
                raise ValueError(f"{what}: {exc}") from None
        return self

    def _check_instances(self) -> None:
        names = [i.name for i in self.instances]
        if len(set(names)) != len(names):
            raise ValueError(f"instances: a name is used twice ({', '.join(names)})")
        declared = self.instances or [InstanceSettings()]
        for step in [*self.steps, *self.guardrails]:
            if step.drives_agent():
                _check_agent_placement(step, declared)
            if step.instance is not None and step.instance not in {i.name for i in declared}:
                raise ValueError(
                    f"step {step.name!r} asks for instance {step.instance!r}; declared: "
                    + ", ".join(i.name for i in declared)
                )
            if step.labels and not any(set(step.labels) <= set(i.labels) for i in declared):
                raise ValueError(f"step {step.name!r}: no instance has all the labels {step.labels}")

    def all_instances(self) -> list[InstanceSettings]:
        """The declared instances, or this machine alone."""
        return list(self.instances) or [InstanceSettings()]

    def gate_enabled(self) -> bool:
        flag = os.environ.get(GATE_ENV_VAR, "").strip().lower()
        if flag in {"0", "off", "false", "no"}:
            return False
        return self.gate

    def workspace_path(self) -> Path:
        return Path(self.workspace)


def _check_agent_placement(step: Step, declared: list[InstanceSettings]) -> None:
    """codex runs on this machine, in our sandbox, next to the gate that answers it: an agent step must be
    placed on a local instance (running it on an SSH host is not supported)."""
    fitting = [
        i
        for i in declared
        if (step.instance is None or i.name == step.instance) and set(step.labels) <= set(i.labels)
    ]
    if any(i.ssh is not None for i in fitting):
        local = [i.name for i in declared if i.ssh is None]
        hint = (
            f"pin it with instance: {local[0]}" if local else "declare a local instance (no 'ssh') and pin it"
        )
        raise ValueError(
            f"step {step.name!r}: agent {step.agent} runs on this machine only, not over SSH; {hint}"
        )


def _allowed_for(loc: tuple[str | int, ...]) -> str | None:
    last = next((p for p in reversed(loc) if isinstance(p, str)), "")
    choices: dict[str, str] = {
        "approval_policy": ", ".join(p.value for p in ApprovalPolicy),
        "profile": ", ".join(c.value for c in Capability),
        "capabilities": ", ".join(c.value for c in Capability),
        "sandbox": ", ".join(m.value for m in SandboxMode),
        "kind": ", ".join(k.value for k in ToolKind),
        "agent": "codex",
        "approval": "auto, required",
        "on_failure": ", ".join(o.value for o in OnFailure),
        "on_instruction_drift": "ignore, warn, ask",
        "policy": "required, optional, off",
        "rules": "spec-not-updated, stale-review",
        "task": TASK_ID_ALLOWED,
    }
    return choices.get(last)


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel]:
    """The model whose fields ``loc`` (without its last part) points into."""
    model: type[BaseModel] = RunRequest
    for part in loc[:-1]:
        if part == "steps":
            model = Step
        elif part == "guardrails":
            model = Guardrail
        elif part == "retry":
            model = RetrySettings
        elif part == "verification":
            model = VerificationSettings
        elif (
            isinstance(part, str)
            and part in VerificationSettings.model_fields
            and model is VerificationSettings
        ):
            model = VerificationSettings.model_fields[part].annotation  # type: ignore[assignment]
    return model


def field_path(loc: tuple[str | int, ...], data: Any = None) -> str:
    """``steps[build].command``: list items by their step name when the document gives one, else by index."""
    text = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            text += f"[{name}]" if isinstance(name, str) and name else f"[{part}]"
            node = item
        else:
            text += f".{part}" if text else part
            node = node.get(part) if isinstance(node, dict) else None
    return text or "request"


def request_error_from(exc: ValidationError, data: Any = None) -> RequestError:
    """Turn pydantic's report into one message that names each bad field and what is allowed.

    ``data`` is the document that failed; with it, steps are named by their ``name`` and an unknown field gets
    the closest known one suggested.
    """
    problems: list[str] = []
    first_field: str | None = None
    for err in exc.errors():
        loc = tuple(err["loc"])
        field = field_path(loc, data)
        first_field = first_field or field
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
            msg = "unknown field" + did_you_mean(loc[-1], _model_at(loc).model_fields)
        allowed = _allowed_for(loc)
        if err["type"] in ("enum", "literal_error") and isinstance(err.get("input"), str) and allowed:
            msg += did_you_mean(err["input"], allowed.split(", "))
        problems.append(
            f"{field}: {msg}" + (f" (allowed: {allowed})" if allowed and "allowed" not in msg else "")
        )
    error = RequestError("; ".join(problems) or str(exc))
    error.field = first_field
    return error


def parse_request(data: Any, *, base_dir: Path | None = None) -> RunRequest:
    """Validate a decoded request document; resolve and check the workspace."""
    if not isinstance(data, dict):
        raise RequestError("the request must be a mapping of fields", field="request")
    check_shape(data, name="request", max_expanded_bytes=MAX_REQUEST_BYTES)  # before any walk of its values
    check_strings(data)
    try:
        request = RunRequest.model_validate(data)
    except ValidationError as exc:
        raise request_error_from(exc, data) from None
    check_secret_values(data, request.secret_env)
    workspace = Path(request.workspace).expanduser()
    if not workspace.is_absolute():
        workspace = (base_dir or Path.cwd()) / workspace
    workspace = workspace.resolve()
    if not workspace.is_dir():
        raise RequestError(f"{workspace} does not exist or is not a directory", field="workspace")
    # A bad instruction file is refused here, before a run directory exists.
    load_for_cwds(workspace, request.step_cwds(), request.instructions)
    load_policy(workspace, request.rules)  # and a bad rules file (RulesError: file, line, example)
    return request.model_copy(update={"workspace": str(workspace)})


def check_strings(data: Any) -> None:
    """Refuse NUL bytes anywhere and strings over their field's limit (``FIELD_LIMIT_BYTES``), naming the field."""
    _walk_strings(data, (), None)  # first: a field over its own limit is named
    try:
        size = len(json.dumps(data, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError):
        size = 0  # not JSON-able: the model's validation names what is wrong
    if size > MAX_REQUEST_BYTES:
        raise RequestError(
            f"the request is {size} bytes; the limit is {MAX_REQUEST_BYTES} bytes", field="request"
        )


def check_secret_values(data: Any, names: list[str], environ: Mapping[str, str] | None = None) -> None:
    """Refuse a request that has a ``secret_env`` variable's value written into it: secrets travel by name.

    The request is kept as written (``request.json``: what the milestones and a resume run) and goes to a
    deployment's parameters, so a value typed into it would be stored; every other record redacts it.
    """
    env = os.environ if environ is None else environ
    secrets = {name: env[name] for name in names if len(env.get(name, "")) >= MIN_SECRET_LEN}
    if not secrets:
        return

    def walk(value: Any, loc: tuple[str | int, ...]) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(key, loc)  # an env name counts as much as its value
                walk(item, (*loc, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*loc, index))
        elif isinstance(value, str):
            for name, secret in secrets.items():
                if secret in value:
                    hint = f"secret_env gives the command ${name}" if "env" in loc[:-1] else f"use ${name}"
                    raise RequestError(
                        f"contains the value of secret {name}; {hint}", field=field_path(loc, data)
                    )

    walk(data, ())


def _walk_strings(value: Any, loc: tuple[str, ...], field: str | None) -> None:
    where = ".".join(loc) or "request"
    if isinstance(value, str):
        if "\x00" in value:
            raise RequestError("contains a NUL byte", field=where)
        limit = FIELD_LIMIT_BYTES.get(field or "")
        size = len(value.encode("utf-8"))
        if limit is not None and size > limit:
            raise RequestError(f"is {size} bytes; the limit is {limit} bytes", field=where)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                raise RequestError("a name contains a NUL byte", field=where)
            if field in ("env", "codex_config") and isinstance(key, str):
                _walk_strings(key, (*loc, key), field)
                _walk_strings(item, (*loc, key), field)
            else:
                _walk_strings(item, (*loc, str(key)), str(key))
    elif isinstance(value, list):
        if field == "command":  # an argv list: its whole length counts, as one exec would see it
            _walk_strings(" ".join(v for v in value if isinstance(v, str)), loc, field)
        for index, item in enumerate(value):
            _walk_strings(item, (*loc, str(index)), field if field == "command" else None)


def load_request(path: Path) -> RunRequest:
    """Read a YAML or JSON request file; every failure is a ``RequestError`` naming the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RequestError(f"cannot read {path}: {exc.strerror}", field="request_file") from exc
    import yaml  # ~10 ms: only for a request file (an `exec` reads none)

    try:
        data = load_document(
            text, name=str(path), json_format=path.suffix == ".json", max_expanded_bytes=MAX_REQUEST_BYTES
        )
    except json.JSONDecodeError as exc:
        raise RequestError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RequestError(f"{path} is not valid YAML: {problem}{where}") from exc
    return parse_request(data, base_dir=path.resolve().parent)
