"""The run manifest's models (the schema's source): the run's own state, tool calls, approvals, metrics.

The manifest is never edited in place: it is folded from the run's record files (records/store.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from codex_orchestrator.approvals import ApprovalRequest
from codex_orchestrator.errors import RecordError
from codex_orchestrator.verification.records import (
    DiagnosticsRecord,
    GuardrailRecord,
    ReviewRecord,
    SpecGuardRecord,
)

SCHEMA_VERSION: Literal[1] = 1
RunStatus = Literal[
    "queued",
    "running",
    "awaiting-approval",
    "succeeded",
    "failed",
    "denied",
    "cancelled",
    "interrupted",
    "changes-requested",
]
ToolCallStatus = Literal[
    "pending", "awaiting-approval", "running", "succeeded", "failed", "denied", "timed-out", "skipped"
]
# Statuses after which a call never changes again (a resumed run keeps "succeeded" ones and reruns the rest).
FINAL_CALL_STATUSES = frozenset({"succeeded", "failed", "denied", "timed-out", "skipped"})


class _Model(BaseModel):
    # defer_build: a record type is built when first used; most are only ever used nested in Manifest, whose
    # build covers them, so building each on its own at import (~15 ms in all) was for nothing.
    model_config = ConfigDict(extra="forbid", defer_build=True)


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


class RuleRecord(_Model):
    """The exec-policy rule that decided a call (codex_orchestrator/rules)."""

    file: str = Field(description="the rules file: workspace-relative, or $CODEX_HOME/rules/<name>")
    pattern: str = Field(description='the rule\'s pattern as written, e.g. ["git", "push"]')
    decision: Literal["allow", "prompt", "forbidden"]
    justification: str | None = None
    matched_prefix: list[str] = Field(default_factory=list, description="the command's tokens it matched")


class RulesFileRecord(_Model):
    """A rules file the run read, fingerprinted like an instruction file."""

    path: str = Field(description="workspace-relative; a user file as $CODEX_HOME/rules/<name>")
    sha256: str
    bytes: int
    scope: Literal["user", "project", "request"] = "project"


class ApprovalRecord(_Model):
    approval_id: str
    tool_call_id: str
    purpose: Literal["capability", "escalation", "instructions"]
    reason: str
    needs: list[str] = Field(default_factory=list)
    requested_at: str
    resolved_at: str | None = None
    outcome: Literal["pending", "approved", "denied", "cancelled"] = "pending"
    for_session: bool = False
    source: Literal["human", "policy"] | None = None
    answered_by: str | None = Field(
        default=None,
        description="the channel the answer came through: prefect-ui, cli, terminal, sdk, auto-reviewer, "
        "timeout or none; set by the channel, never typed by the reviewer",
    )
    reviewer: str | None = Field(default=None, description="the name the reviewer gave, if any (redacted)")
    answer_reason: str | None = None
    flow_run_id: str | None = Field(
        default=None, description="the paused Prefect flow run that waits for the answer"
    )
    run_id: str = ""
    task_id: str = ""
    step: str = ""
    tool: str = ""
    command: str = Field(default="", description="the redacted command asked about")
    cwd: str = "."
    sandbox: str = "none"
    timeout_s: int = 3600
    asked_by: str | None = Field(
        default=None, description="hostname:pid of the process waiting for the answer"
    )
    rule: RuleRecord | None = Field(default=None, description="the rule that asked (a prompt rule), if any")
    amendment: list[list[str]] = Field(
        default_factory=list, description="the prefixes approve-and-remember would allow from now on"
    )
    remembered: list[str] = Field(
        default_factory=list, description="approve-and-remember: the rule lines appended"
    )
    remembered_to: str | None = Field(default=None, description="the rules file they were appended to")

    @classmethod
    def for_request(cls, request: ApprovalRequest, *, requested_at: str) -> ApprovalRecord:
        return cls(
            approval_id=request.approval_id,
            tool_call_id=request.tool_call_id,
            purpose=request.purpose,
            reason=request.reason,
            needs=list(request.needs),
            requested_at=requested_at,
            run_id=request.run_id,
            task_id=request.task_id,
            step=request.step,
            tool=request.tool,
            command=request.command,
            cwd=request.cwd,
            sandbox=request.sandbox,
            timeout_s=request.timeout_s,
            amendment=[list(p) for p in request.amendment],
        )

    def to_request(self) -> ApprovalRequest:
        """The question as a reviewer in any process is shown it."""
        return ApprovalRequest(
            approval_id=self.approval_id,
            run_id=self.run_id,
            task_id=self.task_id,
            tool_call_id=self.tool_call_id,
            step=self.step,
            tool=self.tool,
            command=self.command,
            cwd=self.cwd,
            needs=tuple(self.needs),
            reason=self.reason,
            purpose=self.purpose,
            sandbox=self.sandbox,
            timeout_s=self.timeout_s,
            amendment=tuple(tuple(p) for p in self.amendment),
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


class CallRun(_Model):
    """One earlier, unfinished or failed run of a call that a resume started again."""

    status: str
    started_at: str | None = None
    attempts: int = 0
    error: str | None = None
    instance: str | None = Field(default=None, description="where this earlier run ran")
    host: str | None = Field(default=None, description="hostname:pid of the process that ran it")


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
    approval_source: Literal["not-required", "cache", "human", "policy", "hook"] | None = None
    approval_reason: str | None = None
    rule: RuleRecord | None = Field(default=None, description="the exec-policy rule that decided, if one did")
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
    final_url: str | None = Field(
        default=None, description="fetch: the URL the body came from, after redirects"
    )
    failure: Literal["not-started", "ssh-connect", "ssh-host-key", "ssh-connection-lost"] | None = Field(
        default=None,
        description="why a call without an exit code of its own failed: the command could not start, or the "
        "SSH connection failed (connect or authenticate, host key) or was lost while it ran",
    )
    prefect_task_run_id: str | None = Field(default=None, description="the Prefect task run of this call")
    order: int = Field(default=0, description="seq of the call's first event: the manifest lists calls by it")
    updated_at: str | None = None
    depends_on: list[str] = Field(default_factory=list, description="steps this one waited for (step graph)")
    approval_cache: Literal["hit", "miss"] | None = Field(
        default=None, description="whether an approve-for-session grant was looked up, and found"
    )
    host: str | None = Field(default=None, description="hostname and pid of the process that ran the call")
    instance: str = Field(default="local", description="the instance (this machine or an SSH host) it ran on")
    lineage: list[CallRun] = Field(
        default_factory=list, description="earlier runs of this call (a resumed run reruns unfinished calls)"
    )
    hooks: list[HookRecord] = Field(default_factory=list, description="lifecycle hooks' decisions (hooks.py)")
    parent_call_id: str | None = Field(
        default=None, description="an agent's own tool call: the call id of the agent step that made it"
    )


class MilestoneRecord(_Model):
    name: Literal["foundation", "exec", "telemetry", "verification"]
    status: Literal["pending", "running", "succeeded", "failed", "skipped"] = "pending"
    started_at: str | None = None
    finished_at: str | None = None
    flow_run_id: str | None = None


class InstructionRecord(_Model):
    path: str = Field(description="workspace-relative; a global file as $CODEX_HOME/<name>")
    sha256: str = Field(description="of the whole file, whatever the byte budget kept")
    bytes: int
    scope: Literal["global", "project", "extra"] = "project"
    included_bytes: int | None = Field(default=None, description="how much of it the byte budget kept")


class InstructionSetRecord(_Model):
    """What a step running in ``cwd`` is given (codex's hierarchy, docs/instructions.md)."""

    cwd: str
    sources: list[str] = Field(default_factory=list, description="the paths of its sources, root first")
    sha256: str = Field(description="of the combined text")
    bytes: int
    truncated: bool = False
    warnings: list[str] = Field(default_factory=list, description="e.g. a file cut at the byte budget")


class DriftChange(_Model):
    path: str
    change: Literal["added", "removed", "changed"]
    sha256_before: str | None = None
    sha256_after: str | None = None


class DriftRecord(_Model):
    """The run's instruction sources compared with the previous run of the same task."""

    previous_run_id: str | None = Field(default=None, description="None: no earlier run recorded any")
    status: Literal["first-run", "unchanged", "drifted"]
    changes: list[DriftChange] = Field(default_factory=list)
    policy: Literal["ignore", "warn", "ask"] = "warn"
    decision: Literal["recorded", "warned", "pending", "approved", "denied"] = "recorded"
    approval_id: str | None = Field(default=None, description="on_instruction_drift: ask — the approval")


class NotificationFailureRecord(_Model):
    target: str
    event: str
    detail: str
    at: str


class HookRecord(_Model):
    """What a lifecycle hook (hooks.py) decided about a call."""

    hook: Literal["pre_tool_call", "post_tool_call"]
    decision: Literal["allow", "deny", "block", "error"] = Field(
        description="allow; deny (pre: the call did not run); block (post: the hook objected to the result); "
        "error (the hook itself failed: the call went on)"
    )
    reason: str | None = None
    context: str | None = Field(default=None, description="what the hook added (pre: given to the command)")
    exit_code: int | None = None
    duration_ms: float = 0.0


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


class ExportFailures(_Model):
    """OTLP export failures while the run ran, in the process that owns it (each counted once)."""

    traces: int = Field(default=0, description="failed export attempts of spans")
    metrics: int = Field(default=0, description="failed export attempts of metrics")
    dropped: int = Field(default=0, description="spans and metric collections given up on")
    last_error: str | None = None


class TelemetryRecord(_Model):
    """Where the run's spans and metrics went (docs/telemetry.md)."""

    export: Literal["otlp", "off", "sdk-disabled"] = Field(
        default="off",
        description="otlp: sent to the endpoint; off: traces.jsonl only; sdk-disabled: OTEL_SDK_DISABLED",
    )
    export_requested: bool = Field(default=True, description="the request's telemetry.export")
    protocol: str | None = Field(default=None, description="http/protobuf or grpc")
    endpoint: str | None = Field(default=None, description="scheme://host:port of the OTLP endpoint")
    export_failures: ExportFailures = Field(default_factory=ExportFailures)


class InstanceState(_Model):
    name: str
    status: Literal["up", "down"] = "up"
    reason: str | None = Field(default=None, description="why it was marked down")


class InstanceStats(_Model):
    name: str
    status: Literal["up", "down"] = "up"
    calls: int = 0
    busy_ms: float = 0.0
    failures: int = 0


class AgentTokenTotals(_Model):
    """Tokens the agent's model used over the step (every model response's usage, summed)."""

    input: int = 0
    cached_input: int = 0
    output: int = 0
    reasoning_output: int = 0
    total: int = 0


class AgentToolCallRef(_Model):
    """One of the agent's tool calls, as its record says (``tool_calls`` has the whole record)."""

    id: str
    kind: str
    command: str
    status: ToolCallStatus
    approval_source: str | None = None
    error: str | None = None


class AgentStepRecord(_Model):
    """One agent step driven through its agent's protocol (agents/): folded from its ``agent.*`` events and
    from the records of the tool calls the agent made (``parent_call_id``)."""

    call_id: str = Field(description="the agent step's own tool call")
    step: str
    agent: str = Field(description="e.g. codex")
    agent_version: str = ""
    thread_id: str | None = None
    status: Literal["running", "completed", "failed", "interrupted"] = "running"
    resumed: int = Field(default=0, description="times an earlier run's thread was resumed")
    turns: int = Field(default=0, description="turns finished, over every run of the step")
    tool_calls: list[AgentToolCallRef] = Field(default_factory=list, description="in the order they began")
    tool_calls_by_status: dict[str, int] = Field(
        default_factory=dict, description="the agent's tool calls by status (denied: the agent was refused)"
    )
    commands: int = Field(default=0, description="commands the agent reported (run, failed or declined)")
    file_changes: int = Field(default=0, description="patches the agent reported")
    messages: int = 0
    errors: int = Field(default=0, description="errors the agent reported (e.g. its model endpoint failing)")
    tokens: AgentTokenTotals = Field(default_factory=AgentTokenTotals)
    final_message: str | None = Field(default=None, description="the agent's last message (its answer)")
    error: str | None = None


class ChainHead(_Model):
    """The event log's last link when the run finished: ``codex-orchestrator verify`` checks the log against it."""

    seq: int = Field(description="seq of the log's last event")
    hash: str = Field(description="SHA-256 (hex) of that event's line as written, without its newline")


class RunState(_Model):
    """The run itself, as its owner records it in ``run.json`` (records/store.py); the manifest adds the rest."""

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
    rules_files: list[RulesFileRecord] = Field(
        default_factory=list, description="the exec-policy rules files the run read, with their hashes"
    )
    instruction_sets: list[InstructionSetRecord] = Field(
        default_factory=list, description="per distinct step cwd: its sources and combined hash"
    )
    drift: DriftRecord | None = Field(default=None, description="instruction drift since the previous run")
    notification_failures: list[NotificationFailureRecord] = Field(
        default_factory=list, description="notification targets that could not be told (the run went on)"
    )
    metrics: RunMetrics = Field(default_factory=RunMetrics)
    prefect: PrefectRecord = Field(default_factory=PrefectRecord)
    telemetry: TelemetryRecord = Field(default_factory=TelemetryRecord)
    resumed_at: list[str] = Field(default_factory=list, description="when the run was resumed, oldest first")
    instances: list[InstanceState] = Field(
        default_factory=list, description="the run's instances, up or down"
    )
    diagnostics: DiagnosticsRecord | None = Field(
        default=None, description="verification: what changed in the workspace, tool versions"
    )
    spec_guard: SpecGuardRecord | None = Field(
        default=None, description="verification: spec-guard's findings"
    )
    guardrails: list[GuardrailRecord] = Field(
        default_factory=list, description="verification: each guardrail's result, required or advisory"
    )
    review: ReviewRecord | None = Field(default=None, description="verification: the review before hand-off")
    events_file: str = "events.jsonl"
    traces_file: str = "traces.jsonl"
    chain: ChainHead | None = Field(
        default=None, description="the event log's hash-chain head, recorded when the run finished"
    )


class Manifest(RunState):
    """One run, as recorded in ``.runs/<task>/cli/<run-id>/manifest.json``: folded from the run's records."""

    approvals: list[ApprovalRecord] = Field(default_factory=list)
    approval_cache: CacheCounters = Field(default_factory=CacheCounters)
    pending_approval: ApprovalRecord | None = Field(default=None, description="the oldest pending approval")
    pending_approvals: list[ApprovalRecord] = Field(default_factory=list)
    instance_stats: list[InstanceStats] = Field(
        default_factory=list, description="per instance: calls, busy time"
    )
    agents: list[AgentStepRecord] = Field(
        default_factory=list, description="per agent step driven through its agent's protocol: its summary"
    )
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)  # keep last: the folder splices it in


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
