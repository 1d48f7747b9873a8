"""Metrics of one run, two ways: the manifest's counters (``compute_run_metrics``, a fold of its records) and
the run's *digest* (``digest_log``), computed from its event log alone, from which every task snapshot is made
(records/snapshots.py; definitions in docs/metrics.md). Both are pure functions."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from codex_orchestrator.clock import parse_utc
from codex_orchestrator.records.chain import check_chain
from codex_orchestrator.records.manifest import Manifest, RunMetrics

# Bump when a digest's meaning changes: cached digests of another version are computed afresh.
DIGEST_VERSION = 1
GuardrailResult = Literal["passed", "failed", "skipped", "error"]
# How a verification call's final status reads as a guardrail result, until `guardrail.result` events say it.
_CALL_RESULT: dict[str, GuardrailResult] = {
    "succeeded": "passed",
    "failed": "failed",
    "timed-out": "failed",
    "denied": "error",
    "skipped": "skipped",
}
FAILED_RUN_STATUSES = frozenset({"failed", "denied", "cancelled", "interrupted"})


def compute_run_metrics(manifest: Manifest, *, duration_ms: float | None = None) -> RunMetrics:
    calls = manifest.tool_calls
    status = Counter(c.status for c in calls)
    sources = Counter(c.approval_source for c in calls if c.approval_source)
    guardrails = [c for c in calls if c.milestone == "verification"]
    attempts = sum(len(c.attempts) for c in calls)
    return RunMetrics(
        tool_calls=len(calls),
        succeeded=status["succeeded"],
        failed=status["failed"],
        denied=status["denied"],
        timed_out=status["timed-out"],
        attempts=attempts,
        retries=sum(max(0, len(c.attempts) - 1) for c in calls),
        approvals_by_source=dict(sorted(sources.items())),
        cache_hits=manifest.approval_cache.hits,
        cache_misses=manifest.approval_cache.misses,
        duration_ms=duration_ms,
        tool_call_ms_total=round(sum(c.duration_ms or 0.0 for c in calls), 3),
        guardrails_passed=sum(1 for c in guardrails if c.status == "succeeded"),
        guardrails_failed=sum(1 for c in guardrails if c.status != "succeeded"),
    )


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built when first used, not at import


class Guardrail(_Model):
    name: str
    result: GuardrailResult
    required: bool = True
    source: Literal["guardrail.result", "tool-call"] = Field(
        description="a guardrail.result event, or derived from the verification call's final status"
    )


class Check(_Model):
    """One piece of evidence a complete run has: ``present`` of ``expected`` items (docs/metrics.md)."""

    name: str
    field: str = Field(description="the manifest field this evidence backs")
    expected: int
    present: int


class RunDigest(_Model):
    """What the snapshots need of one run, from its event log alone."""

    run_id: str
    task_id: str = ""
    mode: str = "run"
    gate_enabled: bool = True
    started_at: str | None = None
    finished_at: str | None = Field(default=None, description="None while the run has not finished")
    status: str = "unfinished"
    exit_code: int | None = None
    duration_ms: int | None = None
    events: int = 0
    tool_calls: int = 0
    calls_by_status: dict[str, int] = Field(default_factory=dict)
    attempts: int = 0
    retries: int = 0
    escalations: int = Field(default=0, description="calls asked afresh after a sandbox denial")
    sandbox_denials: int = 0
    approvals_asked: int = 0
    approvals_by_outcome: dict[str, int] = Field(default_factory=dict)
    approvals_by_source: dict[str, int] = Field(default_factory=dict)
    guardrails: list[Guardrail] = Field(default_factory=list)
    review: dict[str, Any] | None = None
    checks: list[Check] = Field(default_factory=list)
    chain_intact: bool = True
    chain_problem: str | None = None
    chain_head_seq: int = 0
    chain_head_hash: str = ""

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


def _ms_between(start: str, end: str) -> int:
    return round((parse_utc(end) - parse_utc(start)).total_seconds() * 1000)


def _ts(event: dict[str, Any]) -> str | None:
    """The event's time if it is one (an edited log may say anything: it then counts as no time at all)."""
    stamp = event.get("ts")
    try:
        parse_utc(stamp)  # type: ignore[arg-type]
    except (TypeError, ValueError, AttributeError):
        return None
    return str(stamp)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _result(value: Any) -> GuardrailResult:
    return value if value in ("passed", "failed", "skipped", "error") else "error"


def _field(event: dict[str, Any], name: str) -> Any:
    # A `guardrail.result`/`review.verdict` may carry its facts at the top level or under `data`.
    if name in event:
        return event[name]
    data = event.get("data")
    return data.get(name) if isinstance(data, dict) else None


def digest_log(data: bytes, run_id: str) -> RunDigest:
    """The digest of one run's ``events.jsonl`` (its bytes): deterministic, no clock, no other file."""
    chain = check_chain(data, run_id)
    events = chain.parsed
    digest = RunDigest(
        run_id=run_id,
        events=len(events),
        chain_intact=chain.ok,
        chain_problem=chain.problem.detail if chain.problem else None,
        chain_head_seq=chain.last_seq,
        chain_head_hash=chain.last_hash,
    )
    call_status: dict[str, str] = {}
    call_step: dict[str, str] = {}
    call_milestone: dict[str, str | None] = {}
    call_attempts: Counter[str] = Counter()
    attempts_open: set[tuple[str, int]] = set()
    attempts_closed: set[tuple[str, int]] = set()
    milestones_started: set[str] = set()
    milestones_finished: set[str] = set()
    asked: dict[str, str] = {}
    answered: set[str] = set()
    escalated: set[str] = set()
    outcomes: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    results: dict[str, Guardrail] = {}
    milestone: str | None = None
    for event in events:
        kind = event.get("type")
        if kind == "run.started":
            if digest.started_at is None:
                digest.started_at = _ts(event)
                digest.task_id = str(event.get("task_id", ""))
                digest.mode = str(event.get("mode", "run"))
                digest.gate_enabled = bool(event.get("gate_enabled", True))
            digest.finished_at, digest.status, digest.exit_code = None, "unfinished", None  # resumed
        elif kind == "run.finished":
            digest.finished_at = _ts(event)
            digest.status = str(event.get("status"))
            code = event.get("exit_code")
            digest.exit_code = code if isinstance(code, int) else None
        elif kind == "milestone.started":
            milestone = str(event.get("milestone"))
            milestones_started.add(milestone)
        elif kind == "milestone.finished":
            milestones_finished.add(str(event.get("milestone")))
            milestone = None
        elif kind in ("tool_call.started", "tool_call.skipped"):
            call = str(event.get("tool_call_id"))
            call_step[call] = str(event.get("step"))
            call_milestone[call] = event.get("milestone") or milestone
            # a call a resumed run starts again is unfinished until its new end
            call_status[call] = "skipped" if kind == "tool_call.skipped" else "unfinished"
        elif kind == "tool_call.finished":
            call_status[str(event.get("tool_call_id"))] = str(event.get("status"))
        elif kind == "attempt.started":
            key = (str(event.get("tool_call_id")), _int(event.get("attempt")))
            attempts_open.add(key)
            call_attempts[key[0]] += 1
        elif kind == "attempt.finished":
            attempts_closed.add((str(event.get("tool_call_id")), _int(event.get("attempt"))))
        elif kind == "sandbox.denied":
            digest.sandbox_denials += 1
        elif kind == "approval.requested":
            asked[str(event.get("approval_id"))] = str(event.get("tool_call_id"))
            if event.get("purpose") == "escalation":
                escalated.add(str(event.get("tool_call_id")))
        elif kind == "approval.resolved":
            outcomes[str(event.get("outcome"))] += 1
            sources[str(event.get("source"))] += 1
            if event.get("approval_id"):
                answered.add(str(event["approval_id"]))
        elif kind == "guardrail.result":
            name = str(_field(event, "name"))
            results[name] = Guardrail(
                name=name,
                result=_result(_field(event, "result")),
                required=bool(_field(event, "required") if _field(event, "required") is not None else True),
                source="guardrail.result",
            )
        elif kind == "review.verdict":
            digest.review = {k: _field(event, k) for k in ("verdict", "source", "by")}
    if digest.started_at and digest.finished_at:
        digest.duration_ms = _ms_between(digest.started_at, digest.finished_at)
    digest.tool_calls = len(call_status)
    digest.calls_by_status = dict(sorted(Counter(call_status.values()).items()))
    digest.attempts = sum(call_attempts.values())
    digest.retries = sum(n - 1 for n in call_attempts.values() if n > 0)
    digest.escalations = len(escalated)
    digest.approvals_asked = len(asked)
    digest.approvals_by_outcome = dict(sorted(outcomes.items()))
    digest.approvals_by_source = dict(sorted(sources.items()))
    verification = sorted(c for c, m in call_milestone.items() if m == "verification")
    if results:  # the verification milestone said what each guardrail gave: that takes precedence
        digest.guardrails = [results[n] for n in sorted(results)]
    else:
        digest.guardrails = [
            Guardrail(name=call_step[c], result=_CALL_RESULT.get(call_status[c], "error"), source="tool-call")
            for c in verification
        ]
    finals = sum(1 for s in call_status.values() if s != "unfinished")
    expected_milestones = 4 if digest.mode == "run" and milestones_started else 0
    digest.checks = [
        Check(name="run.started", field="run_id, task_id, created_at, mode, gate_enabled",
              expected=1, present=1 if digest.started_at else 0),
        Check(name="run.finished", field="status, exit_code, finished_at",
              expected=1, present=1 if digest.finished_at else 0),
        Check(name="milestones", field="milestones[].status", expected=expected_milestones,
              present=min(expected_milestones, len(milestones_started & milestones_finished))),
        Check(name="tool_calls", field="tool_calls[].status, exit_code",
              expected=len(call_status), present=finals),
        Check(name="attempts", field="tool_calls[].attempts[]",
              expected=len(attempts_open), present=len(attempts_open & attempts_closed)),
        Check(name="approvals", field="approvals[].outcome, answered_by",
              expected=len(asked), present=len(set(asked) & answered)),
        Check(name="guardrails", field="guardrails (verification calls' results)",
              expected=len(verification) if not results else len(results),
              present=sum(1 for g in digest.guardrails if g.source == "guardrail.result")
              if results else sum(1 for c in verification if call_status[c] != "unfinished")),
        Check(name="chain", field="chain (the event log's hash chain)",
              expected=1, present=1 if chain.ok else 0),
    ]  # fmt: skip
    return digest
