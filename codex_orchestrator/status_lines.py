"""Status lines for a person on stderr (``exec``'s ▶ / approval / retry / ■ lines): styled through rich where
styles show, plain text where they would be thrown away (a pipe, a file, CI's log), without importing rich
(~20 ms) or rendering through it (~5 ms a line) for nothing.

A line is a sequence of ``(style, text)`` segments; ``""`` is unstyled. Whether styles show follows rich's own
rule (``TTY_COMPATIBLE``, ``FORCE_COLOR``, else whether stderr is a terminal), so the text is the same either way.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

Segment = tuple[str, str]


def styles_show(environ: Mapping[str, str], isatty: bool) -> bool:
    """Rich's ``Console.is_terminal`` decision (rich 13-15), for a stream that is not Jupyter's or IDLE's."""
    tty_compatible = environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "1"
    force_color = environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color != ""
    return isatty


def plain(segments: Sequence[Segment]) -> str:
    return "".join(text for _, text in segments)


def markup(segments: Sequence[Segment]) -> str:
    """The segments as rich markup, their text escaped (a ``[`` in a command or path stays a ``[``)."""
    from rich.markup import escape

    return "".join(f"[{style}]{escape(text)}[/]" if style else escape(text) for style, text in segments)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False


class StatusLines:
    """Writes status lines to stderr: through a rich ``Console`` when styles show, else as plain lines."""

    def __init__(self, stream: TextIO | None = None, environ: Mapping[str, str] | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._console: Console | None = None
        target = stream or sys.stderr
        if styles_show(os.environ if environ is None else environ, _isatty(target)):
            from rich.console import Console

            # soft_wrap: a long path or error stays one line, whatever the terminal width; no emoji codes,
            # so a command's `:x:` is shown as typed.
            self._console = Console(
                file=stream, stderr=stream is None, force_terminal=True, soft_wrap=True, emoji=False
            )

    @property
    def styled(self) -> bool:
        return self._console is not None

    def print(self, *segments: Segment) -> None:
        if self._console is not None:
            self._console.print(markup(segments))
            return
        stream = self._stream or sys.stderr  # looked up per line, like rich's Console(stderr=True)
        with self._lock:
            stream.write(plain(segments) + "\n")
            stream.flush()
