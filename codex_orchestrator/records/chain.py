"""Verifying a run's tamper-evident records: the event log's hash chain, its head in the manifest, and the
approval ledger against the chained approval events.

Each event carries ``prev_hash``, the SHA-256 of the previous line as written (the first: of the run's
genesis, ``codex-orchestrator:<run_id>``); the manifest records the chain head (``chain``: the last event's seq
and line hash) when the run finishes. ``check_chain`` is pure (bytes in, a report out) and names the *first*
problem: an edited, deleted, reordered or appended event. ``verify_run`` adds the files of a run directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from codex_orchestrator.errors import RecordError
from codex_orchestrator.records.events import genesis_hash, line_hash
from codex_orchestrator.records.manifest import ApprovalRecord, ChainHead

ProblemKind = Literal["edited", "deleted", "reordered", "appended", "unchained", "approval"]


@dataclass(frozen=True)
class ChainProblem:
    """The first thing found wrong; ``seq`` is the event it is about, ``line`` its line in events.jsonl."""

    kind: ProblemKind
    detail: str
    seq: int | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "line": self.line, "detail": self.detail}


@dataclass(frozen=True)
class ChainReport:
    events: int  # events that passed, in order
    last_seq: int
    last_hash: str
    head: ChainHead | None = None
    problem: ChainProblem | None = None
    torn_lines: int = 0  # lines passed over as a killed writer's (not part of the chain)
    approvals: int = 0  # approval records checked against the chain
    parsed: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.problem is None


def parse_lines(data: bytes) -> tuple[list[tuple[int, bytes, dict[str, Any]]], set[int]]:
    """The log's whole, parseable event lines as ``(line number, bytes, event)``, and the line numbers passed
    over (torn by a killed writer, or no longer JSON)."""
    pieces = data.split(b"\n")
    events: list[tuple[int, bytes, dict[str, Any]]] = []
    skipped: set[int] = set()
    for number, raw in enumerate(pieces[:-1], start=1):  # the last piece has no newline: torn or empty
        try:
            obj = json.loads(raw)
        except ValueError:
            skipped.add(number)
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("seq"), int):
            skipped.add(number)
            continue
        events.append((number, raw, obj))
    if pieces[-1]:
        skipped.add(len(pieces))
    return events, skipped


def check_chain(data: bytes, run_id: str, head: ChainHead | None = None) -> ChainReport:
    """Walk the chain of one run's log (``data``, the whole file) and report the first problem, if any.

    Without ``head`` (a run not finished yet) only the links are checked: an extra event at the end cannot
    be told from a real one, nor an edit of the very last event."""
    events, skipped = parse_lines(data)
    seqs = {obj["seq"] for _n, _raw, obj in events}
    expected, prev = 1, genesis_hash(run_id)
    hashes: dict[int, str] = {}

    def report(problem: ChainProblem | None) -> ChainReport:
        return ChainReport(
            events=expected - 1,
            last_seq=expected - 1,
            last_hash=prev,
            head=head,
            problem=problem,
            torn_lines=len(skipped),
            parsed=[obj for _n, _raw, obj in events],
        )

    for number, raw, obj in events:
        seq = obj["seq"]
        past_head = head is not None and expected > head.seq
        if past_head and head is not None:
            return report(
                ChainProblem(
                    "appended",
                    f"event seq {seq} (line {number}) comes after the chain head the manifest recorded "
                    f"(seq {head.seq})",
                    seq,
                    number,
                )
            )
        if seq != expected:
            return report(_misplaced(seq, expected, number, seqs, skipped))
        link = obj.get("prev_hash")
        if link != prev:
            if not link:
                return report(
                    ChainProblem(
                        "unchained",
                        f"event seq {seq} carries no prev_hash (a log from before 1.1)",
                        seq,
                        number,
                    )
                )
            if seq == 1:
                detail = "event seq 1 does not start this run's chain (edited, or the log of another run)"
                return report(ChainProblem("edited", detail, 1, number))
            detail = (
                f"event seq {seq - 1} was edited: its hash does not match the prev_hash event seq {seq} "
                f"(line {number}) recorded"
            )
            return report(ChainProblem("edited", detail, seq - 1, number - 1))
        prev = line_hash(raw)
        hashes[seq] = prev
        expected += 1
        if head is not None and seq == head.seq and prev != head.hash:
            later = any(s > seq for s in seqs)
            kind: ProblemKind = "appended" if later else "edited"
            detail = (
                f"the events from seq {seq} on were rewritten: the chain no longer passes through the "
                f"manifest's head (seq {head.seq})"
                if later
                else f"event seq {seq}, the last, was edited: it does not match the manifest's chain head"
            )
            return report(ChainProblem(kind, detail, seq, number))
    if head is not None and expected - 1 < head.seq:
        last = expected - 1
        detail = f"events after seq {last} were deleted: the manifest's chain head is seq {head.seq}"
        return report(ChainProblem("deleted", detail, last + 1, None))
    return report(None)


def _misplaced(seq: int, expected: int, number: int, seqs: set[int], skipped: set[int]) -> ChainProblem:
    if seq < expected:
        detail = f"event seq {seq} (line {number}) comes after seq {expected - 1}: reordered or repeated"
        return ChainProblem("reordered", detail, seq, number)
    if expected in seqs:
        detail = f"event seq {expected} is out of place: seq {seq} (line {number}) stands where it was due"
        return ChainProblem("reordered", detail, expected, number)
    if number - 1 in skipped:
        detail = f"event seq {expected} (line {number - 1}) was edited: it is no longer a JSON event"
        return ChainProblem("edited", detail, expected, number - 1)
    missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected}..{seq - 1}"
    detail = f"event {missing} deleted: seq {seq} (line {number}) follows seq {expected - 1}"
    return ChainProblem("deleted", detail, expected, number)


# Fields of an approval record that its chained approval.resolved event also holds: the ledger's answer.
_LEDGER_FIELDS = (
    ("outcome", "outcome"),
    ("for_session", "for_session"),
    ("answered_by", "answered_by"),
    ("reviewer", "reviewer"),
    ("answer_reason", "reason"),
)


def check_approvals(records: list[ApprovalRecord], events: list[dict[str, Any]]) -> ChainProblem | None:
    """Each approval record must say what its chained events say: asked, and answered (by whom, how)."""
    asked = {e.get("approval_id") for e in events if e.get("type") == "approval.requested"}
    answers: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.get("type") == "approval.resolved" and event.get("approval_id"):
            answers[str(event["approval_id"])] = event  # the last answer counts
    for record in records:
        name = f"approval {record.approval_id}"
        if record.approval_id not in asked:
            return ChainProblem("approval", f"{name}: its question is not in the event chain", None, None)
        answer = answers.get(record.approval_id)
        if answer is None:
            if record.outcome != "pending":
                detail = f"{name}: the record says {record.outcome}, the event chain has no answer"
                return ChainProblem("approval", detail, None, None)
            continue
        for ours, theirs in _LEDGER_FIELDS:
            if getattr(record, ours) != answer.get(theirs):
                detail = (
                    f"{name}: the record's {ours} is {getattr(record, ours)!r}, the chained answer "
                    f"(seq {answer.get('seq')}) says {answer.get(theirs)!r}"
                )
                return ChainProblem("approval", detail, answer.get("seq"), None)
    return None


def verify_run(run_dir: Path, run_id: str) -> ChainReport:
    """Check a run directory: the event log's chain, against the manifest's head, and the approval ledger."""
    from codex_orchestrator.records.paths import EVENTS_FILENAME, MANIFEST_FILENAME

    try:
        data = (run_dir / EVENTS_FILENAME).read_bytes()
    except OSError as exc:
        raise RecordError(f"cannot read the event log: {exc.strerror}", path=str(run_dir)) from exc
    head = _recorded_head(run_dir / MANIFEST_FILENAME)
    report = check_chain(data, run_id, head)
    if report.problem is not None:
        return report
    records = _approval_records(run_dir / "approvals")
    problem = check_approvals(records, report.parsed)
    return ChainReport(
        events=report.events,
        last_seq=report.last_seq,
        last_hash=report.last_hash,
        head=head,
        problem=problem,
        torn_lines=report.torn_lines,
        approvals=len(records),
    )


def _recorded_head(manifest: Path) -> ChainHead | None:
    try:
        data = json.loads(manifest.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RecordError(f"cannot read the manifest's chain head: {exc}", path=str(manifest)) from exc
    raw = data.get("chain") if isinstance(data, dict) else None
    return ChainHead.model_validate(raw) if raw else None


def _approval_records(folder: Path) -> list[ApprovalRecord]:
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append(ApprovalRecord.model_validate_json(path.read_bytes()))
        except (OSError, ValueError) as exc:
            raise RecordError(f"approval record is not valid: {exc}", path=str(path)) from exc
    return records
