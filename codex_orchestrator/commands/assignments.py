"""Environment assignments (``NAME=value cmd``, ``env NAME=value cmd``): which ones are known to be harmless."""

from __future__ import annotations

import re

from codex_orchestrator.commands.findings import RUN, Findings

ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\[[^\]]*\])?\+?=")
# Variables that only change formatting; anything else (PATH, LD_PRELOAD, GIT_*, BASH_ENV, ...) can change
# which program runs or what it does, so it is never assumed harmless.
_HARMLESS_ENV = re.compile(r"LANG|LANGUAGE|LC_[A-Z]+|TZ|TERM|NO_COLOR|COLUMNS|LINES|POSIXLY_CORRECT")
_PAGER_ENV = frozenset({"PAGER", "GIT_PAGER", "MANPAGER"})


def check_env(name: str, value: str | None, f: Findings) -> None:
    """``value`` is None when it is not literal."""
    if _HARMLESS_ENV.fullmatch(name) or (name in _PAGER_ENV and value in ("", "cat")):
        return
    f.add(RUN, f"setting {name} can change which program runs or what it does")
