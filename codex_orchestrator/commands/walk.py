"""The walk over a command line: substitutions, redirections, assignments and keywords, then each command's
handler (registry.py). Entry points: ``classify_shell`` and ``call_facts``."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import assert_never

from codex_orchestrator.commands.assignments import ASSIGNMENT, check_env
from codex_orchestrator.commands.findings import (
    EDIT,
    NETWORK,
    READ,
    RUN,
    Classification,
    CommandPart,
    Findings,
    names,
)
from codex_orchestrator.commands.registry import handler_for
from codex_orchestrator.policy import CallFacts, Capability, ToolKind
from codex_orchestrator.shell_syntax import MAX_NESTING, Lexer, Redir, Word, parts


def classify_shell(command: str | Sequence[str]) -> Classification:
    """Classify a shell command line (``str``) or an argv (a sequence, run without a shell)."""
    findings = Findings(_command, _script)
    if isinstance(command, str):
        _script(findings, command, 0)
    elif command:
        _command(findings, [Word(text=arg, quoted=True) for arg in command], 0)
    if not findings.reasons:
        findings.add(READ, "nothing to run")
    return findings.result()


def call_facts(
    kind: ToolKind,
    command: str | Sequence[str] | None,
    declared: Iterable[Capability] = (),
    requests_escalation: bool = False,
    *,
    persistent_shell: bool = False,
) -> CallFacts:
    """The facts ``policy.decide`` needs. Declared capabilities only ever add needs, whatever the kind.

    ``persistent_shell``: the command runs in a shell that outlives the call (a step's ``session:``), whose
    environment and sandbox were fixed when it started, so neither the overrides nor the read sandbox a
    read-only command relies on can be applied: such a command needs ``run``.
    """
    extra = frozenset(declared)
    match kind:
        case ToolKind.SHELL:
            # A shell call without a command runs nothing (the gate runs `true`).
            found = classify_shell(command if command is not None else "")
            needs = found.needs | extra
            safe = found.read_only_safe and needs == {READ}
            facts = CallFacts(
                kind,
                needs,
                safe,
                requests_escalation,
                env=found.env,
                read_sandbox=safe and found.read_sandbox,
                parts=found.parts,
                opaque=found.opaque,
            )
            if persistent_shell and facts.read_only_safe and (facts.env or facts.read_sandbox):
                return replace(
                    facts, needs=facts.needs | {RUN}, read_only_safe=False, env={}, read_sandbox=False
                )
            return facts
        case ToolKind.EDIT:
            return CallFacts(kind, frozenset({READ, EDIT}) | extra, False, requests_escalation)
        case ToolKind.FETCH:
            return CallFacts(kind, frozenset({READ, NETWORK}) | extra, False, requests_escalation)
        case ToolKind.AGENT:
            # An agent edits and runs whatever it decides to: never read-only safe.
            return CallFacts(kind, frozenset({READ, EDIT, RUN}) | extra, False, requests_escalation)
        case _:
            assert_never(kind)


def _script(f: Findings, src: str, depth: int) -> None:
    if depth > MAX_NESTING:
        f.add(RUN, "shell code nested too deeply to vet")
        f.opaque = True
        return
    _classify_lexed(Lexer(src, depth=depth).lex(), f, depth)


def _classify_lexed(lexer: Lexer, f: Findings, depth: int) -> None:
    for hazard in lexer.hazards:
        f.add(RUN, hazard)
        f.opaque = True
    for sub in lexer.subs:
        _classify_lexed(sub, f, depth + 1)
    for words, redirs in parts(lexer.tokens):
        for redir, target in redirs:
            _redirect(redir, target, f)
        _simple(words, f, depth)


_OUTPUT_REDIRECTIONS = frozenset({">", ">>", ">|", ">&", "&>", "&>>", "<>"})


def _redirect(redir: Redir, target: Word | None, f: Findings) -> None:
    if target is None:
        f.add(RUN, f"cannot parse the command line: {redir.op} without a target")
        return
    if redir.op in ("<<", "<<-", "<<<"):
        return  # here-documents are hazards already; a here-string is only text
    if not target.static or target.text.startswith(("/dev/tcp/", "/dev/udp/")):
        # bash itself connects for /dev/tcp/HOST/PORT; an expansion could name one too.
        f.add(NETWORK, f"redirection {redir.op} {target.text} can open a network connection in bash")
    if redir.op not in _OUTPUT_REDIRECTIONS:
        return  # input and input duplication read only
    if target.literal and (
        target.text == "/dev/null" or (redir.op == ">&" and re.fullmatch(r"[0-9]*-?", target.text))
    ):
        return  # discarding output or duplicating/closing a descriptor writes no file
    f.add(EDIT, f"output redirection {redir.fd}{redir.op} {target.text} writes a file")


_KEYWORDS = names(
    "if then else elif fi do done while until for in case esac select function coproc { } [[ ]]"
)


def _simple(words: list[Word], f: Findings, depth: int) -> None:
    """One simple command as the shell sees it: assignments, then keywords, then the command."""
    while words and (match := ASSIGNMENT.match(words[0].text)) and match.end() <= words[0].literal_len:
        if match.group(2):
            f.add(RUN, f"the subscript of {match.group()} is evaluated as arithmetic")
        check_env(match.group(1), words[0].text[match.end() :] if words[0].literal else None, f)
        words = words[1:]
    if not words:
        return
    head = words[0]
    if not head.quoted and head.text in _KEYWORDS:
        f.add(RUN, f"shell keyword {head.text!r}: control structures are not vetted")
        f.opaque = True
        _simple(words[2:] if head.text == "function" else words[1:], f, depth)  # skip a function's name
    elif not head.quoted and head.text == "!":  # negation changes only the exit status
        _simple(words[1:], f, depth)
    else:
        _command(f, words, depth)


_SYSTEM_BIN = frozenset({"/bin", "/usr/bin"})


def _command(f: Findings, words: list[Word], depth: int) -> None:
    """A command and its arguments after the shell's own syntax is gone (also an argv)."""
    head = words[0]
    if not head.literal:
        f.add(RUN, f"the command name {head.text!r} comes from an expansion, brace or glob")
        f.opaque = True
        return
    index = len(f.parts)
    f.parts.append(CommandPart(tuple(w.text for w in words), tuple(w.literal for w in words)))
    try:
        _handle(f, words, depth)
    finally:
        if len(f.parts) > index + 1:  # it ran other commands: a wrapper
            f.parts[index] = replace(f.parts[index], wrapper=True)


def _handle(f: Findings, words: list[Word], depth: int) -> None:
    head, args = words[0], words[1:]
    name = head.text
    if "/" in name:
        if posixpath.dirname(name) not in _SYSTEM_BIN:
            f.add(RUN, f"{name}: runs a program by path")
            return
        name = posixpath.basename(name)
    handler = handler_for(name)
    if handler is None:
        f.add(RUN, f"{name}: not a known read-only command")
        return
    said = f.count
    handler(name, args, f, depth)
    if f.count == said:  # wrappers let the wrapped command speak for itself
        f.add(READ, f"{name}: read-only")
