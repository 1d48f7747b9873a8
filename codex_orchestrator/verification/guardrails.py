"""The guardrail suite's outcomes: each guardrail's result from its tool call, and whether the run may pass.

Results: ``passed`` (exit 0); ``failed`` (it ran and said no: a non-zero exit); ``error`` (it gave no answer:
could not start, not found or not executable (exit 127/126), denied, timed out, its host was lost);
``skipped`` (not run: exec did not succeed, a guardrail it ``needs`` did not pass, or the request turned it
off). A *required* guardrail must pass for the run to succeed; an *advisory* one (``required: false``) is
recorded and reported, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from codex_orchestrator.records.manifest import ToolCallRecord
from codex_orchestrator.verification.records import GuardrailOutcome, GuardrailRecord, SpecGuardRecord

# A shell's own exit codes for a command it could not run (POSIX 2.8.2): the guardrail gave no answer.
SHELL_CANNOT_RUN = {126: "the command is not executable", 127: "the command was not found"}


class GuardrailLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def required(self) -> bool: ...


def classify(call: ToolCallRecord | None) -> tuple[GuardrailOutcome, str | None]:
    """A guardrail's result from its call record (None: it never got a record). Pure."""
    if call is None:
        return "skipped", "it was not run"
    if call.status == "succeeded":
        return "passed", None
    if call.status == "skipped":
        return "skipped", call.error
    if call.status == "failed" and call.exit_code in SHELL_CANNOT_RUN and call.failure is None:
        return "error", f"exit {call.exit_code}: {SHELL_CANNOT_RUN[call.exit_code]}"
    if call.status == "failed" and call.exit_code is not None and call.failure is None:
        return "failed", call.error or f"exit {call.exit_code}"
    if call.status == "denied":
        return "error", f"denied: {call.approval_reason or call.error or 'not approved'}"
    if call.status == "timed-out":
        return "error", call.error or "timed out"
    return "error", call.error or call.failure or f"did not finish ({call.status})"


def results(
    guardrails: Iterable[GuardrailLike],
    calls: Mapping[str, ToolCallRecord | None],
    call_ids: Mapping[str, str],
) -> list[GuardrailRecord]:
    """One record per guardrail, in the request's order; ``call_ids`` maps a guardrail's name to its call."""
    out: list[GuardrailRecord] = []
    for guardrail in guardrails:
        call_id = call_ids[guardrail.name]
        call = calls.get(call_id)
        result, detail = classify(call)
        out.append(
            GuardrailRecord(
                name=guardrail.name,
                result=result,
                required=guardrail.required,
                call_id=call_id if call is not None else None,
                exit_code=call.exit_code if call is not None else None,
                detail=detail,
            )
        )
    return out


def all_skipped(guardrails: Iterable[GuardrailLike], why: str) -> list[GuardrailRecord]:
    return [
        GuardrailRecord(name=g.name, result="skipped", required=g.required, detail=why) for g in guardrails
    ]


def spec_guard_result(record: SpecGuardRecord) -> GuardrailRecord:
    """spec-guard as one guardrail of the suite (run in-process, so without a call)."""
    detail = record.detail
    if record.findings:
        detail = (
            f"{len(record.findings)} finding(s): "
            + "; ".join(f"{f.file}: {f.rule}" for f in record.findings[:5])
            + (" …" if len(record.findings) > 5 else "")
        )
    return GuardrailRecord(name="spec-guard", result=record.status, required=record.required, detail=detail)


def required_passed(records: Iterable[GuardrailRecord]) -> bool:
    """The run may succeed: every required guardrail passed (advisory ones do not count)."""
    return all(r.result == "passed" for r in records if r.required)


def failing_required(records: Iterable[GuardrailRecord]) -> list[str]:
    return [r.name for r in records if r.required and r.result != "passed"]
