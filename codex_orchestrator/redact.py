"""Secret redaction: every text bound for a manifest, event, log or span passes through a ``Redactor``."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "***"
# Values shorter than this are too likely to collide with ordinary text to be scrubbed reliably.
MIN_SECRET_LEN = 4
_SECRET_NAME_RE = re.compile(r"(token|secret|passw(or)?d|api[_-]?key|private[_-]?key|credential)", re.I)


def looks_secret(name: str) -> bool:
    return bool(_SECRET_NAME_RE.search(name))


class Redactor:
    """Replaces known secret values with ``***``; callable so it can be passed where a ``str -> str`` is wanted."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        self._values.update(s for s in secrets if s and len(s) >= MIN_SECRET_LEN)
        if self._values:
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)
