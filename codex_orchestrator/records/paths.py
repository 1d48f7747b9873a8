"""Where run records live: ``<runs_dir>/<task-id>/cli/<run-id>/`` and the rules for safe task and run ids."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from codex_orchestrator.errors import RequestError

RUNS_DIRNAME = ".runs"
MANIFEST_FILENAME = "manifest.json"
EVENTS_FILENAME = "events.jsonl"
TRACES_FILENAME = "traces.jsonl"
METRICS_FILENAME = "metrics.json"
GITIGNORE_FILENAME = ".gitignore"
# Ignores the whole runs directory, itself included: records never land in the workspace's commits, and an
# agent's `git add -A` cannot pick them up.
RUNS_GITIGNORE = "# run records of codex-orchestrator; never committed\n*\n"

# Task ids become directory names and Prefect artifact keys: keep them to a boring, portable alphabet.
_TASK_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
TASK_ID_ALLOWED = "1-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit"


def validate_task_id(task_id: str) -> str:
    """Return ``task_id`` if it is a safe directory name; raise ``RequestError`` otherwise (no path escapes)."""
    if not _TASK_ID_RE.fullmatch(task_id) or ".." in task_id:
        raise RequestError(f"invalid task id {task_id!r}", field="task", allowed=TASK_ID_ALLOWED)
    return task_id


def validate_run_id(run_id: str) -> str:
    if not _RUN_ID_RE.fullmatch(run_id) or ".." in run_id:
        raise RequestError(
            f"invalid run id {run_id!r}", field="run_id", allowed="letters, digits, '.', '_', '-'"
        )
    return run_id


def new_run_id(now: datetime | None = None) -> str:
    """Sortable, unique run id: ``20261125T012233Z-3fa9c1``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def artifact_key(task_id: str, view: str) -> str:
    """Stable Prefect artifact key per task and view (keys allow only lowercase letters, digits and dashes)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", task_id.lower()).strip("-") or "task"
    return f"{slug}-{view}"


@dataclass(frozen=True)
class RunPaths:
    """The files of one run, plus the task-level metrics file."""

    runs_dir: Path
    task_id: str
    run_id: str

    @property
    def task_dir(self) -> Path:
        return self.runs_dir / self.task_id

    @property
    def run_dir(self) -> Path:
        return self.task_dir / "cli" / self.run_id

    @property
    def manifest(self) -> Path:
        return self.run_dir / MANIFEST_FILENAME

    @property
    def events(self) -> Path:
        return self.run_dir / EVENTS_FILENAME

    @property
    def traces(self) -> Path:
        return self.run_dir / TRACES_FILENAME

    @property
    def task_metrics(self) -> Path:
        return self.task_dir / METRICS_FILENAME


def ensure_runs_dir(runs_dir: Path) -> None:
    """Create ``runs_dir`` (if needed) with its own ``.gitignore`` holding ``*``; an existing one is kept."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    ignore = runs_dir / GITIGNORE_FILENAME
    if not ignore.exists():
        # Written whole into a temp file and renamed, so two runs starting at once never leave half a file.
        tmp = runs_dir / f"{GITIGNORE_FILENAME}.{secrets.token_hex(4)}.tmp"
        tmp.write_text(RUNS_GITIGNORE, encoding="utf-8")
        tmp.replace(ignore)


def ensure_new_run(paths: RunPaths) -> None:
    """Refuse a run id that already has records (exit 2 at the CLI) before anything is started or written."""
    if paths.run_dir.exists():
        raise RequestError(
            f"run {paths.run_id!r} already exists at {paths.run_dir}; pick another --run-id, or "
            f"`codex-orchestrator resume {paths.run_id}` to continue it",
            field="--run-id",
        )


def find_run_dir(runs_dir: Path, run_id: str, marker: str = MANIFEST_FILENAME) -> Path:
    """Locate ``<runs_dir>/*/cli/<run_id>``; raise ``RequestError`` naming the run id when absent."""
    validate_run_id(run_id)
    matches = sorted(runs_dir.glob(f"*/cli/{run_id}/{marker}"))
    if not matches:
        raise RequestError(f"no run {run_id!r} under {runs_dir}", field="run_id")
    return matches[0].parent


def relative_to_workspace(path: Path, workspace: Path) -> str:
    """Paths in records are workspace-relative; anything outside is shown as an absolute path."""
    try:
        return path.resolve().relative_to(workspace.resolve()).as_posix() or "."
    except ValueError:
        return path.as_posix()
