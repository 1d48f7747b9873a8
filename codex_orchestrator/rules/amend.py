"""Approve-and-remember: append an ``allow`` prefix rule to a rules file the way codex's own amendment does
(``prefix_rule(pattern=[...], decision="allow")``, one line, JSON-quoted tokens), under the same advisory
lock (flock), so codex and we can append to one ``default.rules`` at once without losing a line.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from codex_orchestrator.errors import RecordError, RequestError


@dataclass(frozen=True)
class Amendment:
    """A rule that was (or already had been) remembered."""

    path: Path
    text: str  # the rule's line, without its newline
    added: bool  # False: the file already held this exact line


def rule_text(prefix: Sequence[str]) -> str:
    """The line codex writes for an execpolicy amendment of ``prefix``."""
    if not prefix:
        raise RequestError("a remembered rule needs at least one token", field="amendment")
    tokens = ", ".join(json.dumps(t, ensure_ascii=False) for t in prefix)
    return f'prefix_rule(pattern=[{tokens}], decision="allow")'


def append_allow_rule(path: Path, prefix: Sequence[str]) -> Amendment:
    """Append the rule for ``prefix`` to ``path`` (created with its directory), unless it is there already."""
    line = rule_text(prefix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:
        raise RecordError(f"cannot open rules file {path}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "rb") as reader:
            contents = reader.read().decode("utf-8", errors="replace")
        if line in contents.splitlines():
            return Amendment(path, line, added=False)
        data = ("\n" if contents and not contents.endswith("\n") else "") + line + "\n"
        os.write(fd, data.encode("utf-8"))  # one write under the lock, O_APPEND: never interleaved
        os.fsync(fd)
        return Amendment(path, line, added=True)
    except OSError as exc:
        raise RecordError(f"cannot append to rules file {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)  # closing releases the lock
