"""Secret redaction: every value bound for a manifest, event, log or span passes through a ``Redactor``.

Redaction works on values, before serialisation: in JSON a secret with a quote, a backslash or a non-ASCII
character is escaped and no longer matches its plain text. ``Redactor.tree`` scrubs a JSON-able value tree (the
one function records, events and spans share); ``StreamRedactor`` scrubs a stream read in chunks, holding back a
chunk's end while it may still be the start of a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

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

    @property
    def active(self) -> bool:
        """Whether there is anything to redact (callers skip the value walk when not)."""
        return self._pattern is not None

    @property
    def values(self) -> frozenset[str]:
        return frozenset(self._values)

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)

    def tree(self, value: Any) -> Any:
        """A copy of a JSON-able value (dicts, lists, strings, scalars) with every string redacted, keys too."""
        if self._pattern is None:
            return value
        return _walk(value, self)

    def tail(self, text: str) -> str:
        """Redact the end of a longer text: where the cut fell inside a secret, its remaining end is hidden too
        (when at least ``MIN_SECRET_LEN`` characters of it are left)."""
        text = self(text)
        longest = 0
        for secret in self._values:
            for size in range(len(secret) - 1, max(MIN_SECRET_LEN, longest + 1) - 1, -1):
                if text.startswith(secret[-size:]):
                    longest = size
                    break
        return REDACTED + text[longest:] if longest else text

    def held_prefix_len(self, text: str) -> int:
        """Length of the longest end of ``text`` that is the start (not the whole) of a secret."""
        longest = 0
        for secret in self._values:
            tail = text[-(len(secret) - 1) :]
            start = tail.find(secret[0])
            while start != -1 and len(tail) - start > longest:
                if secret.startswith(tail[start:]):
                    longest = len(tail) - start
                    break
                start = tail.find(secret[0], start + 1)
        return longest

    def matches(self, text: str) -> Iterable[re.Match[str]]:
        return self._pattern.finditer(text) if self._pattern is not None else ()


def _walk(value: Any, redact: Redactor) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {(redact(k) if isinstance(k, str) else k): _walk(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, redact) for v in value]
    return value


class StreamRedactor:
    """Redacts a text stream fed in chunks: a secret split across two chunks is still found.

    ``feed`` returns the text that is safe to pass on now and keeps back the end of the stream while it may be the
    beginning of a secret; ``flush`` (at the end of the stream) returns what is held, redacted.
    """

    def __init__(self, redact: Redactor) -> None:
        self._redact = redact
        self._held = ""

    def feed(self, text: str) -> str:
        if not self._redact.active:
            return text
        buf = self._held + text
        cut = len(buf) - self._redact.held_prefix_len(buf)
        for match in self._redact.matches(buf):
            if match.start() < cut < match.end():
                cut = match.end()  # never split a whole secret: pass it on, redacted
                break
        self._held = buf[cut:]
        return self._redact(buf[:cut])

    def flush(self) -> str:
        held, self._held = self._held, ""
        return self._redact(held)

    @property
    def holding(self) -> bool:
        return bool(self._held)


def redactor_for_env(names: object, environ: Mapping[str, str] | None = None) -> Redactor:
    """A redactor of the named secret variables' values as far as this process has them (``names`` as the
    run's recorded request holds them: anything that is not a list of strings names nothing)."""
    env = os.environ if environ is None else environ
    listed = names if isinstance(names, list) else []
    return Redactor(env[n] for n in listed if isinstance(n, str) and env.get(n))
