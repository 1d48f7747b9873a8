"""Handlers for wrappers, which run another command (env, sudo, nice, xargs, exec), and for shells and
``eval``, whose scripts are classified in turn."""

from __future__ import annotations

import re
from collections.abc import Iterable

from codex_orchestrator.commands.args import after_options, has_long, has_short
from codex_orchestrator.commands.assignments import check_env
from codex_orchestrator.commands.findings import EDIT, RUN, Findings, Handler, names
from codex_orchestrator.shell_syntax import Word


def _assignments_then_command(args: list[Word], f: Findings, depth: int) -> None:
    """``NAME=value ... cmd args`` as ``env`` and ``sudo`` take them."""
    while args and "=" in args[0].text:
        var, _, value = args[0].text.partition("=")
        check_env(var, value if args[0].literal else None, f)
        args = args[1:]
    if args:
        f.command(args, depth)


def env(name: str, args: list[Word], f: Findings, depth: int) -> None:
    idx = after_options(args, "uC", "i0v", ("unset", "chdir"), ("ignore-environment", "null", "debug"))
    if idx is None:  # e.g. -S, which splits a string into a new command line
        f.add(RUN, "env: option not vetted")
        return
    clears = has_short(args[:idx], "iu", "uC") or has_long(args[:idx], ("ignore-environment", "unset"))
    had = len(f.env)
    _assignments_then_command(args[idx:], f, depth)
    if clears and len(f.env) > had:
        f.add(RUN, "env -i or -u drops the variables that make the command read-only")


def sudo(name: str, args: list[Word], f: Findings, depth: int) -> None:
    f.add(RUN, "sudo runs the command as another user")
    # --preserve-env takes an optional `=list`, so it is in both sets.
    long_value = names("user group close-from chdir host prompt role type other-user preserve-env")
    long_flags = names("preserve-env login shell edit non-interactive list validate set-home")
    idx = after_options(args, "ugCDhprtUTR", "AbEeHiKklnPSsVv", long_value, long_flags)
    if idx is None:
        return
    if has_short(args[:idx], "e", "ugCDhprtUTR") or has_long(args[:idx], ("edit",)):
        f.add(EDIT, "sudo -e edits files")
        return  # its operands are files, not a command
    _assignments_then_command(args[idx:], f, depth)


def unwrap(
    takes_value: str = "", flags: str = "", long_value: Iterable[str] = (), long_flags: Iterable[str] = ()
) -> Handler:
    """A wrapper that takes options and then runs its operands as a command (nice, time, command, exec)."""

    def handler(name: str, args: list[Word], f: Findings, depth: int) -> None:
        idx = after_options(args, takes_value, flags, long_value, long_flags)
        if idx is None:
            f.add(RUN, f"{name}: option not vetted")
            return
        options, rest = args[:idx], args[idx:]
        if name == "time" and (has_short(options, "o", "f") or has_long(options, ("output",))):
            f.add(EDIT, "time -o writes a file")
        if name == "command" and has_short(options, "vV"):
            return  # `command -v` only looks the name up
        if name == "timeout":
            rest = rest[1:]  # the duration
        if rest:
            f.command(rest, depth)

    return handler


def nohup(name: str, args: list[Word], f: Findings, depth: int) -> None:
    f.add(EDIT, "nohup writes nohup.out when its output is a terminal")
    if args:
        f.command(args, depth)


def xargs(name: str, args: list[Word], f: Findings, depth: int) -> None:
    f.add(RUN, "xargs runs a command built from its input")
    long_value = names(
        "arg-file delimiter eof replace max-lines max-args max-procs max-chars process-slot-var"
    )
    long_flags = names("null open-tty interactive no-run-if-empty verbose exit show-limits")
    idx = after_options(args, "adEILnPs", "0oprtxeil", long_value, long_flags)
    if idx is not None:
        f.command(args[idx:] or [Word(text="echo", quoted=True)], depth)


def exec_builtin(name: str, args: list[Word], f: Findings, depth: int) -> None:
    f.add(RUN, "exec replaces the shell")
    idx = after_options(args, "a", "cl")
    if idx is not None and args[idx:]:
        f.command(args[idx:], depth)


def eval_builtin(name: str, args: list[Word], f: Findings, depth: int) -> None:
    f.add(RUN, f"{name} runs a string as shell code")
    if all(a.literal for a in args):
        f.script(" ".join(a.text for a in args), depth + 1)


def source(name: str, args: list[Word], f: Findings, depth: int) -> None:
    f.add(RUN, f"{name} runs a script file in the shell")


_SHELL_FLAGS = frozenset("celuxv")


def shell(name: str, args: list[Word], f: Findings, depth: int) -> None:
    """``sh -c SCRIPT`` (also ``bash -lc``, ``-e``, ``-o pipefail``) is classified by SCRIPT."""
    has_c = False
    i = 0
    while i < len(args) and args[i].literal:
        text = args[i].text
        if text in ("--norc", "--noprofile", "--posix"):
            i += 1
        elif text in ("-o", "+o"):
            i += 2
        elif text == "--":
            i += 1
            break
        elif re.fullmatch(r"[-+][a-z]+", text) and set(text[1:]) <= _SHELL_FLAGS:
            has_c = has_c or (text[0] == "-" and "c" in text)
            i += 1
        else:
            break
    if has_c and i < len(args) and args[i].literal:
        f.script(args[i].text, depth + 1)
    else:
        f.add(RUN, f"{name} runs a script that is not vetted")
