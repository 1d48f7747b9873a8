"""Read-only git for verification, run by the orchestrator itself: config neutralised and, where bubblewrap
works, inside a read-only sandbox without network.

Verification runs after an agent had the workspace: a repository's config or attributes may name programs
(``filter.<x>.clean``, textconv) that no setting can turn off, and ``git diff`` of the work tree reaches them.
The read-only sandbox keeps whatever they do from writing anything or reaching the network.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from codex_orchestrator.commands.git_env import GIT_NEUTRAL_ENV
from codex_orchestrator.sandbox import SandboxMode, SandboxSpec, host_tmp_entries, probe, wrap_argv
from codex_orchestrator.verification.errors import GitError

GIT_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 10.0
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
_PINNED_ENV = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb", "NO_COLOR": "1", "PAGER": "cat"}


def _sandboxed(argv: list[str], workspace: Path) -> tuple[str, ...]:
    if not probe().available:
        return tuple(argv)
    # The host's /tmp entries stay readable: a workspace below a repository's top level, both under /tmp,
    # must still find its .git.
    spec = SandboxSpec(SandboxMode.READ_ONLY, workspace.resolve(), readable_paths=host_tmp_entries())
    return wrap_argv(argv, spec, cwd=workspace.resolve())


def _env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "USER", "TMPDIR")}
    return {**keep, **_PINNED_ENV, **GIT_NEUTRAL_ENV, "GIT_OPTIONAL_LOCKS": "0"}


def _run_sandboxed(argv: list[str], workspace: Path, timeout_s: float) -> subprocess.CompletedProcess[bytes]:
    """``argv`` in the read-only sandbox, config neutralised, no stdin; its output captured."""
    return subprocess.run(
        _sandboxed(argv, workspace),
        cwd=workspace,
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )


def git(workspace: Path, *args: str) -> str:
    """``git args`` in ``workspace``; its stdout, or ``GitError`` with git's own message."""
    argv = ["git", "-c", "core.quotePath=false", *args]
    try:
        done = _run_sandboxed(argv, workspace, GIT_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise GitError(args, None, f"did not finish within {GIT_TIMEOUT_S:.0f} s") from exc
    except OSError as exc:
        raise GitError(args, None, f"cannot run git: {exc.strerror}") from exc
    if done.returncode != 0:
        raise GitError(args, done.returncode, done.stderr.decode("utf-8", errors="replace"))
    return done.stdout[:MAX_OUTPUT_BYTES].decode("utf-8", errors="replace")


def version_of(argv: list[str], workspace: Path) -> str:
    """The first line a ``--version`` style probe prints (read-only sandbox, short timeout), or why not."""
    try:
        done = _run_sandboxed(argv, workspace, PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"unknown (no answer within {PROBE_TIMEOUT_S:.0f} s)"
    except OSError as exc:
        return f"unknown ({exc.strerror})"
    text = (done.stdout or done.stderr).decode("utf-8", errors="replace").strip()
    first = text.splitlines()[0] if text else ""
    if done.returncode != 0:
        return f"unknown (exit {done.returncode}{': ' + first if first else ''})"
    return first or "unknown (printed nothing)"


def head_commit(workspace: Path) -> str | None:
    """HEAD's commit, or None outside a repository or before the first commit."""
    try:
        return git(workspace, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").strip() or None
    except GitError:
        return None


def resolve(workspace: Path, rev: str) -> str:
    """A revision's commit id; ``GitError`` naming it when it is unknown."""
    if rev.startswith("-"):
        raise GitError(("rev-parse", rev), None, f"{rev!r} is not a revision")
    return git(workspace, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}").strip()


def changed_paths(workspace: Path, base: str) -> list[str]:
    """Files that differ between ``base`` and the work tree (committed since, staged, unstaged, untracked)."""
    tracked = git(workspace, "diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", base, "--")
    return sorted({p for p in tracked.split("\0") if p} | set(untracked_paths(workspace)))


def untracked_paths(workspace: Path) -> list[str]:
    out = git(workspace, "ls-files", "--others", "--exclude-standard", "-z")
    return [p for p in out.split("\0") if p]


def numstat(workspace: Path, base: str) -> list[tuple[str, int | None, int | None]]:
    """(path, insertions, deletions) from ``base`` to the work tree; untracked files count as all inserted."""
    out = git(
        workspace, "diff", "--numstat", "-z", "--no-renames", "--no-ext-diff", "--no-textconv", base, "--"
    )
    rows: list[tuple[str, int | None, int | None]] = []
    for entry in out.split("\0"):
        if not entry:
            continue
        added, deleted, path = entry.split("\t", 2)
        rows.append((path, None if added == "-" else int(added), None if deleted == "-" else int(deleted)))
    for path in untracked_paths(workspace):
        rows.append((path, *_line_count(workspace / path)))
    return sorted(rows)


def _line_count(path: Path) -> tuple[int | None, int | None]:
    try:
        data = path.read_bytes()
    except OSError:
        return None, None
    if b"\0" in data[:8000]:
        return None, None  # binary, as git would say
    return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1), 0


def tracked_and_untracked(workspace: Path) -> list[str]:
    out = git(workspace, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return sorted({p for p in out.split("\0") if p})
