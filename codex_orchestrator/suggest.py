"""Suggestions for mistyped names ("did you mean"): request fields, options, subcommands and choices."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# difflib's default: close enough that the suggestion is usually what was meant, rarely a wild guess.
SIMILARITY_CUTOFF = 0.6


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``name``, or ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=SIMILARITY_CUTOFF)
    return f" (did you mean {close[0]!r}?)" if close else ""
