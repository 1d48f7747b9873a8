"""Instruction drift: this run's instruction sources and exec-policy rules files against those of the previous
run of the same task.

``compare`` is pure (per source path: added, removed, or changed sha256); ``previous_sources`` finds the task's
most recent earlier run that recorded instructions. The foundation milestone records the result (the manifest's
``drift``), logs an ``instructions.drift`` event, and with ``on_instruction_drift: ask`` the exec milestone
asks a human before it starts (tasks/foundation.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

from codex_orchestrator.errors import RecordError
from codex_orchestrator.records.manifest import DriftChange, DriftRecord
from codex_orchestrator.records.store import RUN_FILENAME, RunStore

DriftPolicy = Literal["ignore", "warn", "ask"]


class Fingerprinted(Protocol):
    """A recorded file: an instruction file or an exec-policy rules file."""

    @property
    def path(self) -> str: ...
    @property
    def sha256(self) -> str: ...


def compare(before: Sequence[Fingerprinted], after: Sequence[Fingerprinted]) -> list[DriftChange]:
    """Per source path, in the order the sources are read: added, removed (after the rest), changed."""
    old = {r.path: r.sha256 for r in before}
    new = {r.path: r.sha256 for r in after}
    changes: list[DriftChange] = []
    for path, sha in new.items():
        if path not in old:
            changes.append(DriftChange(path=path, change="added", sha256_after=sha))
        elif old[path] != sha:
            changes.append(
                DriftChange(path=path, change="changed", sha256_before=old[path], sha256_after=sha)
            )
    for path, sha in old.items():
        if path not in new:
            changes.append(DriftChange(path=path, change="removed", sha256_before=sha))
    return changes


def previous_sources(
    runs_dir: Path, task_id: str, run_id: str, created_at: str
) -> tuple[str, list[Fingerprinted]] | None:
    """The instruction sources of the task's latest run created before ``created_at`` whose foundation
    finished, or None when there is none."""
    best: tuple[str, str, list[Fingerprinted]] | None = None
    for path in (runs_dir / task_id / "cli").glob(f"*/{RUN_FILENAME}"):
        try:
            state = RunStore.read_run_file(path)
        except RecordError:
            continue  # a half-written or foreign directory is no previous run
        if state.run_id == run_id or state.created_at >= created_at:
            continue
        foundation = next((m for m in state.milestones if m.name == "foundation"), None)
        if foundation is None or foundation.status != "succeeded":
            continue
        key = (state.created_at, state.run_id)
        if best is None or key > (best[0], best[1]):
            best = (state.created_at, state.run_id, [*state.instructions, *state.rules_files])
    return None if best is None else (best[1], best[2])


def drift_record(
    previous: tuple[str, list[Fingerprinted]] | None,
    current: Sequence[Fingerprinted],
    policy: DriftPolicy,
) -> DriftRecord:
    if previous is None:
        return DriftRecord(status="first-run", policy=policy)
    run_id, sources = previous
    changes = compare(sources, current)
    return DriftRecord(
        previous_run_id=run_id,
        status="drifted" if changes else "unchanged",
        changes=changes,
        policy=policy,
        decision="recorded"
        if not changes or policy == "ignore"
        else ("warned" if policy == "warn" else "pending"),
    )


def summary(record: DriftRecord) -> str:
    """One line: ``AGENTS.md changed, docs/AGENTS.md added (since run X)``."""
    if record.status != "drifted":
        return "no earlier run to compare with" if record.status == "first-run" else "unchanged"
    parts = ", ".join(f"{c.path} {c.change}" for c in record.changes)
    return f"{parts} (since run {record.previous_run_id})"
