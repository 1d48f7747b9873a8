"""A tool call as the gate sees it: resolved paths, classified capabilities, retry policy, timeouts."""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from codex_orchestrator.commands import call_facts
from codex_orchestrator.errors import RequestError
from codex_orchestrator.fetch import FetchPolicy
from codex_orchestrator.policy import CallFacts, Capability, ToolKind
from codex_orchestrator.request import FetchSettings, RetrySettings, Step
from codex_orchestrator.retry import RetryPolicy


@dataclass(frozen=True)
class ToolCallSpec:
    step: str
    milestone: str
    kind: ToolKind
    cwd: Path  # absolute, inside the workspace
    command: str | tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    declared: frozenset[Capability] = frozenset()
    requests_escalation: bool = False
    timeout_s: float = 600.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    session: str | None = None
    path: Path | None = None  # edit target, absolute
    content: str | None = None
    append: bool = False
    url: str | None = None
    backend_cwd: str | None = None  # working directory on a remote backend (SSH); local calls use cwd
    depends_on: tuple[str, ...] = ()  # the steps this call waited for (recorded)
    call_id: str = ""  # default: ``call_id_for(milestone, step)``
    fetch_policy: FetchPolicy = field(default_factory=FetchPolicy)  # what a fetch may reach
    prefect_task_run_id: str | None = None  # the Prefect task run the call runs in, recorded from the start

    @property
    def id(self) -> str:
        return self.call_id or call_id_for(self.milestone, self.step)

    @property
    def display(self) -> str:
        """One line describing the call, for records and approval forms (redacted later)."""
        return describe_call(self.kind, self.command, self.path, self.url, append=self.append)

    def facts(self) -> CallFacts:
        command = self.command if self.kind in (ToolKind.SHELL, ToolKind.AGENT) else None
        declared = self.declared
        if self.kind is ToolKind.FETCH and self.path is not None:
            declared = declared | {Capability.EDIT}  # the body is saved into the workspace
        persistent = self.session is not None  # a named session's shell keeps the environment it started with
        return call_facts(self.kind, command, declared, self.requests_escalation, persistent_shell=persistent)

    def argv(self) -> tuple[str, ...]:
        if isinstance(self.command, tuple):
            return self.command
        return ("/bin/sh", "-c", self.command or "true")


_SLUG_RE = re.compile(r"[^a-z0-9]+")


def call_id_for(milestone: str, step: str) -> str:
    """Deterministic: the same step of the same milestone has the same id in every run and rerun."""
    digest = hashlib.sha256(f"{milestone}\0{step}".encode()).hexdigest()[:6]
    slug = _SLUG_RE.sub("-", step.lower()).strip("-")[:40] or "step"
    return f"tc-{slug}-{digest}"


def retry_policy(settings: RetrySettings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.max_attempts,
        base_delay_s=settings.base_delay_s,
        max_delay_s=settings.max_delay_s,
        multiplier=settings.multiplier,
        jitter=settings.jitter,
        retry_on_exit_codes=frozenset(settings.retry_on_exit_codes),
        retry_on_timeout=settings.retry_on_timeout,
    )


def fetch_policy(settings: FetchSettings) -> FetchPolicy:
    return FetchPolicy(
        allow_hosts=frozenset(h.lower().rstrip(".") for h in settings.allow_hosts),
        max_bytes=settings.max_bytes,
        max_redirects=settings.max_redirects,
    )


def inside(workspace: Path, rel: str, what: str) -> Path:
    """Resolve ``rel`` under the workspace, following symlinks, and refuse anything that escapes it."""
    root = workspace.resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        raise RequestError(f"{rel!r} resolves outside the workspace", field=what)
    return path


def describe_call(
    kind: ToolKind,
    command: str | tuple[str, ...] | list[str] | None,
    path: Path | str | None,
    url: str | None,
    *,
    append: bool = False,
) -> str:
    """The one-line description of a call (``write notes.md``, ``fetch https://…``, the command line)."""
    if kind is ToolKind.EDIT:
        return f"{'append to' if append else 'write'} {path}"
    if kind is ToolKind.FETCH:
        return f"fetch {url}"
    if isinstance(command, tuple | list):
        return shlex.join(command)
    return command or ""


def step_display(step: Step) -> str:
    """A step's description before it is resolved into a spec (a refused, skipped or unplaced call)."""
    return describe_call(step.kind, step.command, step.path, step.url, append=step.append)


def spec_from_step(
    step: Step,
    *,
    call_id: str,
    workspace: Path,
    milestone: str,
    default_retry: RetrySettings,
    extra_env: Mapping[str, str] = {},
    fetch: FetchSettings | None = None,
    prefect_task_run_id: str | None = None,
) -> ToolCallSpec:
    cwd = inside(workspace, step.cwd, f"{step.name}.cwd")
    command: str | tuple[str, ...] | None
    command = tuple(step.command) if isinstance(step.command, list) else step.command
    return ToolCallSpec(
        call_id=call_id,
        step=step.name,
        milestone=milestone,
        kind=step.kind,
        cwd=cwd,
        command=command,
        env={**extra_env, **step.env},
        declared=frozenset(step.capabilities),
        requests_escalation=step.approval == "required",
        timeout_s=step.timeout_s,
        retry=retry_policy(step.retry or default_retry),
        session=step.session,
        path=inside(workspace, step.path, f"{step.name}.path") if step.path else None,
        content=step.content,
        append=step.append,
        url=step.url,
        depends_on=tuple(step.needs),
        fetch_policy=fetch_policy(fetch) if fetch is not None else FetchPolicy(),
        prefect_task_run_id=prefect_task_run_id,
    )
