"""Handlers for commands that only read, except through a few options (or operands) that write or run."""

from __future__ import annotations

import re

from codex_orchestrator.commands.args import guard, has_long, has_short, operands
from codex_orchestrator.commands.findings import EDIT, RUN, Findings, names
from codex_orchestrator.shell_syntax import Word


def read_only(name: str, args: list[Word], f: Findings, depth: int) -> None:
    """No option or operand of these writes, runs or reaches out. Still, an expansion in option position
    (``ls -{a,l}``) is not taken on trust: options are only ever literal."""
    for arg in args:
        if not arg.literal and arg.text.startswith("-"):
            f.add(RUN, f"{name}: the option {arg.text!r} comes from a brace, glob or expansion")
            return


def find(name: str, args: list[Word], f: Findings, depth: int) -> None:
    if not guard(name, args, f):
        return
    i = 0
    while i < len(args):
        text = args[i].text
        if text in ("-delete", "-fprint", "-fprint0", "-fprintf", "-fls"):
            f.add(EDIT, f"find {text} modifies files")
        elif text in ("-exec", "-execdir", "-ok", "-okdir"):
            f.add(RUN, f"find {text} runs a command")
            end = next((j for j in range(i + 1, len(args)) if args[j].text in (";", "+")), len(args))
            if end > i + 1:
                f.command(args[i + 1 : end], depth)
            i = end
        i += 1


def sort(name: str, args: list[Word], f: Findings, depth: int) -> None:
    if not guard(name, args, f):
        return
    if has_short(args, "o", "ktST") or has_long(args, ("output",)):
        f.add(EDIT, "sort -o writes a file")
    if has_long(args, ("compress-program",)):
        f.add(RUN, "sort --compress-program runs a program")


def uniq(name: str, args: list[Word], f: Findings, depth: int) -> None:
    # The second operand is an output file: a glob (`uniq in*`) can make one, so every word must be literal.
    if guard(name, args, f, operands=False) and len(operands(args)) >= 2:
        f.add(EDIT, "uniq writes its second operand")


def date(name: str, args: list[Word], f: Findings, depth: int) -> None:
    # An operand that is not a +FORMAT sets the clock, and an extra word from a glob would be one.
    if not guard(name, args, f, operands=False):
        return
    if has_short(args, "s", "dfrI") or has_long(args, ("set",)):
        f.add(RUN, "date -s sets the system clock")
    elif any(not op.text.startswith("+") for op in _date_operands(args)):
        f.add(RUN, "date MMDDhhmm sets the system clock")


def _date_operands(args: list[Word]) -> list[Word]:
    out: list[Word] = []
    i = 0
    while i < len(args):
        text = args[i].text
        if text == "--":
            return out + args[i + 1 :]
        if text in ("-d", "-f", "-r", "--date", "--file", "--reference"):
            i += 1  # the value is the next word
        elif not text.startswith("-") or text == "-":
            out.append(args[i])
        i += 1
    return out


def file(name: str, args: list[Word], f: Findings, depth: int) -> None:
    if guard(name, args, f) and (has_short(args, "C", "eFfmP") or has_long(args, ("compile",))):
        f.add(EDIT, "file -C writes a compiled magic file")


def printf(name: str, args: list[Word], f: Findings, depth: int) -> None:
    # Only the first word can be an option; `printf -v 'a[$(cmd)]'` would run cmd in bash.
    if guard(name, args[:1], f, operands=False) and args and args[0].text.startswith("-v"):
        f.add(RUN, "printf -v assigns a shell variable")


def rg(name: str, args: list[Word], f: Findings, depth: int) -> None:
    if not guard(name, args, f):
        return
    if has_short(args, "z", "ABCEefgjmMrTt") or has_long(args, ("pre", "hostname-bin", "search-zip")):
        f.add(RUN, "rg --pre, --hostname-bin or -z runs other programs")


def tree(name: str, args: list[Word], f: Findings, depth: int) -> None:
    if not guard(name, args, f):
        return
    # -o writes its listing to a file; -R reruns tree in each directory with `-o 00Tree.html`.
    if has_short(args, "oR", "LPIHT") or has_long(args, ("output",)):
        f.add(EDIT, "tree -o or -R writes a file")


def test(name: str, args: list[Word], f: Findings, depth: int) -> None:
    """``test``/``[``: bash evaluates the subscript of ``-v 'a[$(cmd)]'`` (and a nameref's) as arithmetic."""
    if not guard(name, args, f):
        return
    if any(a.text in ("-v", "-R") for a in args):
        f.add(RUN, f"{name} -v evaluates an array subscript, which can run commands in bash")
    elif name == "[" and (not args or args[-1].text != "]"):
        f.add(RUN, "[ without a closing ]: not vetted")


def set_options(name: str, args: list[Word], f: Findings, depth: int) -> None:
    # `set -k` would turn later `NAME=value` arguments into environment: only a few options are vetted.
    i = 0
    while i < len(args):
        text = args[i].text
        cluster = re.fullmatch(r"[-+][eEuxvfCn]*(o?)", text) if args[i].literal and len(text) > 1 else None
        if cluster and cluster.group(1) and (i + 1 == len(args) or args[i + 1].text in _SET_O):
            i += 2  # `-o NAME`, also at the end of a cluster (`-euo pipefail`)
        elif cluster and not cluster.group(1):
            i += 1
        else:
            f.add(RUN, f"set {text}: not a vetted shell option")
            return


_SET_O = names("errexit nounset pipefail xtrace verbose noglob noclobber errtrace")
