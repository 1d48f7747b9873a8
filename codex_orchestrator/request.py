"""The run request: what a user writes (YAML or JSON) to ask for an autonomy run, validated strictly."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from codex_orchestrator.errors import RequestError
from codex_orchestrator.policy import ApprovalPolicy, Capability, ToolKind
from codex_orchestrator.records.paths import TASK_ID_ALLOWED, validate_task_id
from codex_orchestrator.sandbox import SandboxMode
from codex_orchestrator.suggest import did_you_mean

# Environment switch for the gate rollout (the seed's risk table: "gate ToolOrchestrator behind a feature flag").
GATE_ENV_VAR = "CODEX_ORCHESTRATOR_GATE"


class RetrySettings(BaseModel):
    """Exponential backoff with jitter and a ceiling, applied only to retryable failures."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=3, ge=1, le=20, description="attempts in all, the first included")
    base_delay_s: float = Field(default=0.5, ge=0, le=600, description="delay before the second attempt")
    max_delay_s: float = Field(default=10.0, ge=0, le=3600, description="ceiling for any one delay")
    multiplier: float = Field(default=2.0, ge=1, le=10)
    jitter: float = Field(default=0.2, ge=0, le=1, description="± fraction of each delay drawn at random")
    retry_on_exit_codes: list[int] = Field(
        default_factory=lambda: [75], description="exit codes that mean 'try again' (75 = EX_TEMPFAIL)"
    )
    retry_on_timeout: bool = False


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

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Step:
        if self.kind in (ToolKind.SHELL, ToolKind.AGENT) and not self.command:
            raise ValueError(f"a {self.kind.value} step needs 'command'")
        if self.kind is ToolKind.EDIT and (not self.path or self.content is None):
            raise ValueError("an edit step needs 'path' and 'content'")
        if self.kind is ToolKind.FETCH and not self.url:
            raise ValueError("a fetch step needs 'url'")
        for rel in (self.cwd, self.path):
            if rel is not None and (Path(rel).is_absolute() or ".." in Path(rel).parts):
                raise ValueError(f"{rel!r} must be a path inside the workspace (relative, no '..')")
        return self


class RunRequest(BaseModel):
    """A whole autonomy run: a task in a workspace, its steps, its guardrails and the gate's settings."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(description=f"task id: {TASK_ID_ALLOWED}")
    workspace: str = Field(
        description="the repository the run works in (absolute, or relative to the request file)"
    )
    goal: str = Field(default="", description="what the run is for, shown in the manifest and the UI")
    approval_policy: ApprovalPolicy = ApprovalPolicy.ON_REQUEST
    profile: list[Capability] = Field(
        default_factory=lambda: [Capability.READ], description="capabilities granted without asking"
    )
    sandbox: SandboxMode = SandboxMode.WORKSPACE_WRITE
    gate: bool = Field(
        default=True, description="feature flag: false runs calls directly, recorded as not-required"
    )
    approval_timeout_s: int = Field(
        default=3600, ge=1, le=7 * 86_400, description="an unanswered approval is a denial"
    )
    retry: RetrySettings = Field(default_factory=RetrySettings)
    secret_env: list[str] = Field(
        default_factory=list, description="environment variables passed to commands and redacted from records"
    )
    steps: list[Step] = Field(min_length=1)
    guardrails: list[Step] = Field(
        default_factory=list, description="commands whose outcome sets the run status"
    )
    instructions: list[str] = Field(
        default_factory=list, description="extra instruction files to load besides AGENTS.md and friends"
    )

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
        return self

    def gate_enabled(self) -> bool:
        flag = os.environ.get(GATE_ENV_VAR, "").strip().lower()
        if flag in {"0", "off", "false", "no"}:
            return False
        return self.gate

    def workspace_path(self) -> Path:
        return Path(self.workspace)


def _allowed_for(loc: tuple[str | int, ...]) -> str | None:
    last = next((p for p in reversed(loc) if isinstance(p, str)), "")
    choices: dict[str, str] = {
        "approval_policy": ", ".join(p.value for p in ApprovalPolicy),
        "profile": ", ".join(c.value for c in Capability),
        "capabilities": ", ".join(c.value for c in Capability),
        "sandbox": ", ".join(m.value for m in SandboxMode),
        "kind": ", ".join(k.value for k in ToolKind),
        "approval": "auto, required",
        "task": TASK_ID_ALLOWED,
    }
    return choices.get(last)


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel]:
    """The model whose fields ``loc`` (without its last part) points into."""
    model: type[BaseModel] = RunRequest
    for part in loc[:-1]:
        if part in ("steps", "guardrails"):
            model = Step
        elif part == "retry":
            model = RetrySettings
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
    try:
        request = RunRequest.model_validate(data)
    except ValidationError as exc:
        raise request_error_from(exc, data) from None
    workspace = Path(request.workspace).expanduser()
    if not workspace.is_absolute():
        workspace = (base_dir or Path.cwd()) / workspace
    workspace = workspace.resolve()
    if not workspace.is_dir():
        raise RequestError(f"{workspace} does not exist or is not a directory", field="workspace")
    return request.model_copy(update={"workspace": str(workspace)})


def load_request(path: Path) -> RunRequest:
    """Read a YAML or JSON request file; every failure is a ``RequestError`` naming the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RequestError(f"cannot read {path}: {exc.strerror}", field="request_file") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
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
