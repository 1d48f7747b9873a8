"""Argument helpers shared by the handlers: which words are literal, options and operands.

A word the shell may still expand is never compared as an option: ``guard`` makes the call opaque first, so the
helpers below only ever look at words whose text is exactly what the program receives.
"""

from __future__ import annotations

from collections.abc import Iterable

from codex_orchestrator.commands.findings import RUN, Findings
from codex_orchestrator.shell_syntax import Word


def guard(name: str, args: list[Word], f: Findings, *, operands: bool = True) -> bool:
    """For commands whose options (or, with ``operands=False``, the number of operands) matter: a word that is
    not literal makes the call opaque unless it can only ever become operands (``src/*``, not ``-dele?e``,
    ``*``, ``$X`` or ``-{a,b}``). Returns whether every word passed."""
    for arg in args:
        if arg.literal or (operands and arg.operand_only):
            continue
        what = "an option" if operands else "an option or an extra operand"
        f.add(RUN, f"{name}: {arg.text!r} comes from an expansion, brace or glob and could become {what}")
        return False
    return True


def has_short(args: Iterable[Word], letters: str, takes_value: str = "") -> bool:
    """Any short-option cluster sets one of ``letters`` (a value-taking letter ends the cluster)."""
    for arg in args:
        text = arg.text
        if len(text) < 2 or text[0] != "-" or text[1] == "-":
            continue
        for ch in text[1:]:
            if ch in letters:
                return True
            if ch in takes_value:
                break
    return False


def has_long(args: Iterable[Word], wanted: Iterable[str]) -> bool:
    """Any long option is one of ``wanted`` or an abbreviation of one (GNU getopt accepts unique prefixes)."""
    full_names = tuple(wanted)
    for arg in args:
        if arg.text.startswith("--") and len(arg.text) > 2:
            given = arg.text[2:].partition("=")[0]
            if any(full.startswith(given) for full in full_names):
                return True
    return False


def is_option(arg: Word) -> bool:
    return len(arg.text) > 1 and arg.text.startswith("-")


def operands(args: list[Word]) -> list[Word]:
    for i, arg in enumerate(args):
        if arg.text == "--":
            return [a for a in args[:i] if not is_option(a)] + args[i + 1 :]
    return [a for a in args if not is_option(a)]


def after_options(
    args: list[Word],
    takes_value: str = "",
    flags: str = "",
    long_value: Iterable[str] = (),
    long_flags: Iterable[str] = (),
) -> int | None:
    """Index of the first operand, or None when an option (or a non-literal word before it) is not understood."""
    long_value, long_flags = tuple(long_value), tuple(long_flags)
    i = 0
    while i < len(args):
        text = args[i].text
        if not args[i].literal:
            return None
        if text == "--":
            return i + 1
        if text.startswith("--"):
            name, eq, _ = text[2:].partition("=")
            if name in long_flags and not eq:
                i += 1
            elif name in long_value:
                i += 1 if eq else 2
            else:
                return None
        elif is_option(args[i]):
            for j, ch in enumerate(text[1:], start=1):
                if ch in takes_value:
                    i += 1 if j + 1 < len(text) else 2  # the value is attached or the next word
                    break
                if ch not in flags:
                    return None
            else:
                i += 1
        else:
            return i
    return i
