"""Diagnostics: what changed in the workspace since the run began (diff stat; files touched by edit steps vs
by commands) and the tools it ran with. Recorded in the manifest and shown in the hand-off."""

from __future__ import annotations

import platform
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path

from codex_orchestrator.sandbox import probe
from codex_orchestrator.verification import git as g
from codex_orchestrator.verification.errors import GitError
from codex_orchestrator.verification.records import ChangedFile, DiagnosticsRecord


def classify(
    rows: Iterable[tuple[str, int | None, int | None]], edited: Iterable[str]
) -> tuple[list[ChangedFile], list[str], list[str]]:
    """Each changed file with who changed it; (files, edited files, command files). Pure.

    Edits are recorded calls with a path; whatever else changed was changed by commands (an agent, a build).
    A file an edit step wrote counts as ``edit`` even if a command touched it too: the diff cannot tell."""
    edits = set(edited)
    files = [
        ChangedFile(path=path, insertions=ins, deletions=dels, by="edit" if path in edits else "command")
        for path, ins, dels in rows
    ]
    changed = {f.path for f in files}
    return files, sorted(edits & changed), sorted(changed - edits)


def summary_line(record: DiagnosticsRecord) -> str:
    """``git diff --stat``'s last line: ``3 files changed, 10 insertions(+), 2 deletions(-)``."""
    n = record.files_changed
    return (
        f"{n} file{'s' if n != 1 else ''} changed, {record.insertions} insertion{'s' if record.insertions != 1 else ''}"
        f"(+), {record.deletions} deletion{'s' if record.deletions != 1 else ''}(-)"
    )


def program_of(command: str | list[str] | None) -> str | None:
    """The program a step runs (its argv[0]), for a ``--version`` probe."""
    if isinstance(command, list):
        return command[0] if command else None
    try:
        words = shlex.split(command or "")
    except ValueError:
        return None
    return words[0] if words else None


def tool_versions(workspace: Path, probes: Mapping[str, list[str]]) -> dict[str, str]:
    """git, python and bubblewrap, plus each configured probe (name -> argv)."""
    found = {
        "git": g.version_of(["git", "--version"], workspace),
        "python": f"Python {platform.python_version()}",
        "bwrap": probe().version or "unavailable",
    }
    for name, argv in sorted(probes.items()):
        found[name] = g.version_of(list(argv), workspace) if argv else "unknown (no command)"
    return found


def measure(
    workspace: Path,
    base_commit: str | None,
    *,
    edited: Iterable[str],
    probes: Mapping[str, list[str]],
    now: str,
) -> DiagnosticsRecord:
    """The workspace's change since ``base_commit`` (to the work tree, uncommitted and untracked included)."""
    tools = tool_versions(workspace, probes)
    if base_commit is None:
        return DiagnosticsRecord(
            tools=tools, recorded_at=now, error="no base commit (not a git repository, or no commit yet)"
        )
    try:
        rows = g.numstat(workspace, base_commit)
    except GitError as exc:
        return DiagnosticsRecord(
            base_commit=base_commit,
            head_commit=g.head_commit(workspace),
            tools=tools,
            recorded_at=now,
            error=str(exc),
        )
    files, edited_files, command_files = classify(rows, edited)
    return DiagnosticsRecord(
        base_commit=base_commit,
        head_commit=g.head_commit(workspace),
        files_changed=len(files),
        insertions=sum(f.insertions or 0 for f in files),
        deletions=sum(f.deletions or 0 for f in files),
        files=files,
        edited_files=edited_files,
        command_files=command_files,
        tools=tools,
        recorded_at=now,
    )
