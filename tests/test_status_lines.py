"""status_lines.py: the same text whether styled through rich or written plain, and rich's rule for which."""

from __future__ import annotations

import io

import pytest

from codex_orchestrator.status_lines import StatusLines, markup, plain, styles_show

SUMMARY = (("green", "■ succeeded"), ("", " exit=0 · .runs/exec/cli/[x]/manifest.json"))


@pytest.mark.parametrize(
    ("environ", "isatty", "shown"),
    [
        ({}, False, False),
        ({}, True, True),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": ""}, True, False),
        ({"TTY_COMPATIBLE": "1"}, False, True),
        ({"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"}, True, False),
    ],
)
def test_styles_show_follows_rich(environ: dict[str, str], isatty: bool, shown: bool) -> None:
    from rich.console import Console

    assert styles_show(environ, isatty) is shown
    # The same decision rich makes for a stream that is (not) a terminal.
    stream = io.StringIO()
    stream.isatty = lambda: isatty  # type: ignore[method-assign]
    assert Console(file=stream, _environ=environ).is_terminal is shown


def test_plain_and_styled_lines_carry_the_same_text() -> None:
    out = io.StringIO()
    status = StatusLines(stream=out, environ={})
    assert not status.styled
    status.print(*SUMMARY)
    status.print(("dim", "▶ echo :x: [bold]"))
    assert out.getvalue() == "■ succeeded exit=0 · .runs/exec/cli/[x]/manifest.json\n▶ echo :x: [bold]\n"

    styled_out = io.StringIO()
    styled = StatusLines(stream=styled_out, environ={"FORCE_COLOR": "1"})
    assert styled.styled
    styled.print(*SUMMARY)
    styled.print(("dim", "▶ echo :x: [bold]"))
    text = styled_out.getvalue()
    assert "\x1b[" in text  # styled
    from rich.text import Text

    assert Text.from_ansi(text).plain == out.getvalue()  # and the same characters: markup escaped, no emoji


def test_markup_escapes_text() -> None:
    assert plain(SUMMARY) == "■ succeeded exit=0 · .runs/exec/cli/[x]/manifest.json"
    assert markup((("red", "[bold]x"),)) == "[red]\\[bold]x[/]"
