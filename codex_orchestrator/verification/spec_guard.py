"""spec-guard: code that changed comes with a spec/task document that changed, and reviewed specs stay fresh.

Rules (each finding names its file and rule):

- ``spec-not-updated``: files matching ``code_paths`` (and neither ``spec_paths`` nor ``ignore_paths``)
  changed since the base revision, but no file matching ``spec_paths`` did; one finding per code file.
- ``stale-review``: a spec document declares ``last_review: YYYY-MM-DD`` (in its front matter, or on a line
  of its own) older than ``max_review_age_days`` days, or a ``last_review`` that is not such a date.

Globs: ``*`` and ``?`` stay within a directory, ``**`` crosses them, and a pattern without ``/`` matches the
file name at any depth (as in ``.gitignore``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from functools import lru_cache
from pathlib import Path

from codex_orchestrator.verification import git as g
from codex_orchestrator.verification.errors import GitError
from codex_orchestrator.verification.records import SpecFinding, SpecGuardRecord
from codex_orchestrator.verification.settings import SpecGuardSettings

SPEC_NOT_UPDATED = "spec-not-updated"
STALE_REVIEW = "stale-review"
MAX_SPEC_BYTES = 1024 * 1024  # a spec bigger than this is not read for its last_review
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_LAST_REVIEW_RE = re.compile(r"^[ \t]*last_review[ \t]*:[ \t]*[\"']?([^\"'\s]*)[\"']?[ \t]*$", re.MULTILINE)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regular expression over workspace-relative POSIX paths."""
    anchored = "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    out = ""
    i = 0
    while i < len(body):
        if body.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif body.startswith("**", i):
            out += ".*"
            i += 2
        elif body[i] == "*":
            out += "[^/]*"
            i += 1
        elif body[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(body[i])
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    suffix = "(?:/.*)?$" if pattern.endswith("/") else "$"
    return re.compile(prefix + out + suffix)


def matches(path: str, patterns: Iterable[str]) -> bool:
    return any(glob_regex(p).match(path) for p in patterns)


def split_changes(paths: Iterable[str], settings: SpecGuardSettings) -> tuple[list[str], list[str]]:
    """(code files, spec files) among changed paths. Pure."""
    code: list[str] = []
    spec: list[str] = []
    for path in sorted(set(paths)):
        if matches(path, settings.ignore_paths):
            continue
        if matches(path, settings.spec_paths):
            spec.append(path)
        elif matches(path, settings.code_paths):
            code.append(path)
    return code, spec


def spec_not_updated(
    code: Sequence[str], spec: Sequence[str], settings: SpecGuardSettings
) -> list[SpecFinding]:
    if not code or spec:
        return []
    where = ", ".join(settings.spec_paths) or "(no spec_paths configured)"
    return [
        SpecFinding(
            rule=SPEC_NOT_UPDATED,
            file=path,
            message=f"code changed but none of the spec/task documents ({where}) did",
        )
        for path in code
    ]


def last_review(text: str) -> str | None:
    """The ``last_review`` a document declares: in its front matter first, else on a line of its own."""
    front = _FRONT_MATTER_RE.match(text)
    if front is not None:
        found = _LAST_REVIEW_RE.search(front.group(1))
        if found is not None:
            return found.group(1)
    found = _LAST_REVIEW_RE.search(text)
    return found.group(1) if found is not None else None


def stale_reviews(documents: Mapping[str, str], max_age_days: int, today: date) -> list[SpecFinding]:
    """A finding for each document whose ``last_review`` is older than ``max_age_days`` (or not a date). Pure."""
    findings: list[SpecFinding] = []
    for path in sorted(documents):
        value = last_review(documents[path])
        if value is None:
            continue
        try:
            reviewed = date.fromisoformat(value) if _DATE_RE.match(value) else None
        except ValueError:
            reviewed = None
        if reviewed is None:
            findings.append(
                SpecFinding(
                    rule=STALE_REVIEW, file=path, message=f"last_review {value!r} is not a date YYYY-MM-DD"
                )
            )
            continue
        age = (today - reviewed).days
        if age > max_age_days:
            findings.append(
                SpecFinding(
                    rule=STALE_REVIEW,
                    file=path,
                    message=f"last_review {value} is {age} days old (more than {max_age_days})",
                )
            )
    return findings


def read_specs(workspace: Path, paths: Iterable[str], settings: SpecGuardSettings) -> dict[str, str]:
    """The text of every spec document in the workspace (symlinks and oversize files passed over)."""
    texts: dict[str, str] = {}
    for rel in paths:
        if matches(rel, settings.ignore_paths) or not matches(rel, settings.spec_paths):
            continue
        path = workspace / rel
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_SPEC_BYTES:
                continue
            texts[rel] = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
    return texts


def check(workspace: Path, base: str | None, settings: SpecGuardSettings, *, today: date) -> SpecGuardRecord:
    """Run the configured rules on ``workspace``: its change since ``base`` (default HEAD) to the work tree.

    Raises ``GitError`` when the workspace is no repository or ``base`` is unknown."""
    commit = g.resolve(workspace, base or "HEAD")
    code, spec = split_changes(g.changed_paths(workspace, commit), settings)
    findings: list[SpecFinding] = []
    if SPEC_NOT_UPDATED in settings.rules:
        findings += spec_not_updated(code, spec, settings)
    if STALE_REVIEW in settings.rules:
        docs = read_specs(workspace, g.tracked_and_untracked(workspace), settings)
        findings += stale_reviews(docs, settings.max_review_age_days, today)
    return SpecGuardRecord(
        status="failed" if findings else "passed",
        base=commit,
        required=settings.required,
        code_files=code,
        spec_files=spec,
        findings=findings,
    )


def check_in_run(
    workspace: Path, base: str | None, settings: SpecGuardSettings, *, today: date
) -> SpecGuardRecord:
    """``check`` as the verification milestone runs it: a workspace it cannot look at is ``skipped``/``error``."""
    if not settings.enabled:
        return SpecGuardRecord(status="skipped", required=settings.required, detail="disabled in the request")
    try:
        return check(workspace, base, settings, today=today)
    except GitError as exc:
        status = "skipped" if exc.not_a_repository else "error"
        return SpecGuardRecord(status=status, base=base, required=settings.required, detail=str(exc))


def finding_lines(record: SpecGuardRecord) -> list[str]:
    return [f"{f.file}: {f.rule}: {f.message}" for f in record.findings]
