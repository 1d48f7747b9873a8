"""The run manifest: pydantic models (the schema's source) and an atomic, crash-safe writer.

Every write goes to a temp file, is fsynced and renamed over the manifest, so readers and a killed run only ever
see a complete document. Finished tool calls are serialised once and reused, and rewrites are paced by their own
cost, so the per-call record cost stays flat as a run grows to thousands of calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from codex_orchestrator.errors import RecordError

SCHEMA_VERSION: Literal[1] = 1
RunStatus = Literal["queued", "running", "awaiting-approval", "succeeded", "failed", "denied", "cancelled"]
ToolCallStatus = Literal[
    "pending", "awaiting-approval", "running", "succeeded", "failed", "denied", "timed-out"
]
# The writer spends at most ~1/PACING_FACTOR of wall time rewriting manifests; state changes of the run itself
# (status, milestones, approvals) are always written at once.
PACING_FACTOR = 20.0
MIN_REWRITE_INTERVAL_S = 0.05


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttemptRecord(_Model):
    attempt: int
    started_at: str
    duration_ms: float
    exit_code: int | None = None
    sandboxed: bool = False
    error: str | None = None
    retry_delay_s: float | None = Field(
        default=None, description="delay before the next attempt, if one followed"
    )


class ApprovalRecord(_Model):
    approval_id: str
    tool_call_id: str
    purpose: Literal["capability", "escalation"]
    reason: str
    needs: list[str] = Field(default_factory=list)
    requested_at: str
    resolved_at: str | None = None
    outcome: Literal["pending", "approved", "denied"] = "pending"
    for_session: bool = False
    source: Literal["human", "policy"] | None = None
    answered_by: str | None = Field(
        default=None, description="prefect-ui, cli, terminal, sdk, auto-reviewer or timeout"
    )
    answer_reason: str | None = None
    flow_run_id: str | None = Field(
        default=None, description="the paused Prefect flow run that waits for the answer"
    )


class GuardRecord(_Model):
    mode: Literal["streaming", "buffered"] = "streaming"
    switched: bool = False
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    samples: int = 0
    threshold_ms: float | None = None


class SandboxRecord(_Model):
    mode: str = "none"
    state: str = "none"
    denial: str | None = None
    evidence: str | None = None
    detail: str | None = None


class ToolCallRecord(_Model):
    id: str
    step: str
    milestone: str
    kind: str
    command: str = Field(description="redacted command line")
    cwd: str = Field(description="workspace-relative working directory; on an SSH backend the remote one")
    backend: str = "local"
    needs: list[str] = Field(default_factory=list)
    status: ToolCallStatus = "pending"
    approval_outcome: Literal["skip", "forbid", "ask"] | None = None
    approval_source: Literal["not-required", "cache", "human", "policy"] | None = None
    approval_reason: str | None = None
    approval_ids: list[str] = Field(default_factory=list)
    sandbox: SandboxRecord = Field(default_factory=SandboxRecord)
    attempts: list[AttemptRecord] = Field(default_factory=list)
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: float | None = None
    output_tail: str = ""
    output_bytes: int = 0
    omitted_bytes: int = 0
    session_id: str | None = None
    guard: GuardRecord = Field(default_factory=GuardRecord)
    error: str | None = None
    failure: Literal["not-started", "ssh-connect", "ssh-host-key", "ssh-connection-lost"] | None = Field(
        default=None,
        description="why a call without an exit code of its own failed: the command could not start, or the "
        "SSH connection failed (connect or authenticate, host key) or was lost while it ran",
    )
    prefect_task_run_id: str | None = None


class MilestoneRecord(_Model):
    name: Literal["foundation", "exec", "telemetry", "verification"]
    status: Literal["pending", "running", "succeeded", "failed", "skipped"] = "pending"
    started_at: str | None = None
    finished_at: str | None = None
    flow_run_id: str | None = None


class InstructionRecord(_Model):
    path: str
    sha256: str
    bytes: int


class CacheCounters(_Model):
    hits: int = 0
    misses: int = 0


class PrefectRecord(_Model):
    api_url: str | None = Field(default=None, description="the Prefect API that holds this run's flow runs")
    parent_flow_run_id: str | None = None


class RunMetrics(_Model):
    tool_calls: int = 0
    succeeded: int = 0
    failed: int = 0
    denied: int = 0
    timed_out: int = 0
    attempts: int = 0
    retries: int = 0
    approvals_by_source: dict[str, int] = Field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    duration_ms: float | None = None
    tool_call_ms_total: float = 0.0
    guardrails_passed: int = 0
    guardrails_failed: int = 0


class Manifest(_Model):
    """One run, as recorded in ``.runs/<task>/cli/<run-id>/manifest.json``."""

    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str
    task_id: str
    mode: Literal["run", "exec"] = "run"
    status: RunStatus = "queued"
    goal: str = ""
    workspace: str = Field(
        default=".", description="always '.': every path here is relative to the workspace"
    )
    run_dir: str = Field(description="this run's directory, workspace-relative")
    created_at: str
    updated_at: str
    heartbeat_at: str
    finished_at: str | None = None
    exit_code: int | None = None
    error: str | None = None
    request: dict[str, Any] = Field(default_factory=dict, description="the request, secrets redacted")
    gate_enabled: bool = True
    milestones: list[MilestoneRecord] = Field(default_factory=list)
    instructions: list[InstructionRecord] = Field(default_factory=list)
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    approval_cache: CacheCounters = Field(default_factory=CacheCounters)
    pending_approval: ApprovalRecord | None = None
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    metrics: RunMetrics = Field(default_factory=RunMetrics)
    prefect: PrefectRecord = Field(default_factory=PrefectRecord)
    events_file: str = "events.jsonl"
    traces_file: str = "traces.jsonl"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that any reader sees either the old or the new file, whole."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise RecordError(f"cannot write: {exc.strerror}", path=str(path)) from exc


class ManifestWriter:
    """Owns one manifest in memory and writes it atomically.

    ``save(force=True)`` writes now (run state changes); ``save()`` may defer a rewrite caused by tool-call
    progress until the pacing interval has passed; ``close()`` always writes the final state.
    """

    def __init__(self, path: Path, manifest: Manifest, redact: Callable[[str], str] | None = None) -> None:
        self.path = path
        self.manifest = manifest
        self._redact: Callable[[str], str] = redact or (lambda s: s)
        self._lock = threading.RLock()
        self._fragments: dict[str, str] = {}  # tool call id -> serialised JSON, for finished calls only
        self._finished: set[str] = set()
        self._next_allowed = 0.0
        self._dirty = False
        self.writes = 0

    def mark_finished(self, call: ToolCallRecord) -> None:
        """A finished call no longer changes: serialise it once and reuse the text in later rewrites."""
        with self._lock:
            self._fragments[call.id] = call.model_dump_json()
            self._finished.add(call.id)

    def render(self) -> bytes:
        with self._lock:
            head = self.manifest.model_dump(mode="json", exclude={"tool_calls"})
            calls = [
                self._fragments[c.id] if c.id in self._finished else c.model_dump_json()
                for c in self.manifest.tool_calls
            ]
        body = json.dumps(head, indent=None, separators=(",", ":"))
        # Splice the cached call fragments in as the last key; the result is the same document model_dump gives.
        text = body[:-1] + ',"tool_calls":[' + ",".join(calls) + "]}"
        return self._redact(text).encode("utf-8")

    def save(self, *, force: bool = False) -> bool:
        """Write if forced or the pacing interval has passed; returns whether it wrote."""
        with self._lock:
            now = time.monotonic()
            if not force and now < self._next_allowed:
                self._dirty = True
                return False
            started = time.monotonic()
            atomic_write_bytes(self.path, self.render())
            cost = time.monotonic() - started
            self._next_allowed = time.monotonic() + max(MIN_REWRITE_INTERVAL_S, cost * PACING_FACTOR)
            self._dirty = False
            self.writes += 1
            return True

    def flush(self) -> None:
        """Write any deferred change now."""
        with self._lock:
            if self._dirty:
                self.save(force=True)


def load_manifest(path: Path) -> Manifest:
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise RecordError(f"cannot read manifest: {exc.strerror}", path=str(path)) from exc
    except ValueError as exc:
        raise RecordError(f"manifest is not valid: {exc}", path=str(path)) from exc


def manifest_json_schema() -> dict[str, Any]:
    schema = Manifest.model_json_schema()
    schema["$id"] = "https://codex-orchestrator.dev/schemas/manifest.schema.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
