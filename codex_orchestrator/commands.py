"""Conservative classification of shell commands into the capabilities they need (``classify_shell``).

A command is read-only safe only when every part is a known read-only command with no dangerous flag, no
output redirection and no construct that hides what runs; anything not understood needs ``run``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import assert_never

from codex_orchestrator.policy import CallFacts, Capability, ToolKind

# MAX_NESTING is re-exported: the lexer and the classifier share one nesting limit, and callers know it from here.
from codex_orchestrator.shell_syntax import MAX_NESTING as MAX_NESTING
from codex_orchestrator.shell_syntax import Lexer, Redir, Word, parts

READ, EDIT, RUN, NETWORK = Capability.READ, Capability.EDIT, Capability.RUN, Capability.NETWORK


@dataclass(frozen=True)
class Classification:
    """What a command needs; ``read_only_safe`` when no part may write, run unvetted code or go online."""

    needs: frozenset[Capability]
    read_only_safe: bool
    reasons: tuple[str, ...]


def classify_shell(command: str | Sequence[str]) -> Classification:
    """Classify a shell command line (``str``) or an argv (a sequence, run without a shell)."""
    findings = _Findings()
    if isinstance(command, str):
        _script(command, findings, 0)
    elif command:
        _command([Word(text=arg, quoted=True) for arg in command], findings, 0)
    if not findings.reasons:
        findings.add(READ, "nothing to run")
    return findings.result()


def call_facts(
    kind: ToolKind,
    command: str | Sequence[str] | None,
    declared: Iterable[Capability] = (),
    requests_escalation: bool = False,
) -> CallFacts:
    """The facts ``policy.decide`` needs. Declared capabilities only ever add needs, whatever the kind."""
    extra = frozenset(declared)
    match kind:
        case ToolKind.SHELL:
            # A shell call without a command runs nothing (the gate runs `true`).
            found = classify_shell(command if command is not None else "")
            needs = found.needs | extra
            return CallFacts(kind, needs, found.read_only_safe and needs == {READ}, requests_escalation)
        case ToolKind.EDIT:
            return CallFacts(kind, frozenset({READ, EDIT}) | extra, False, requests_escalation)
        case ToolKind.FETCH:
            return CallFacts(kind, frozenset({READ, NETWORK}) | extra, False, requests_escalation)
        case ToolKind.AGENT:
            # An agent edits and runs whatever it decides to: never read-only safe.
            return CallFacts(kind, frozenset({READ, EDIT, RUN}) | extra, False, requests_escalation)
        case _:
            assert_never(kind)


# --- findings -----------------------------------------------------------------------------------------------


class _Findings:
    """Capabilities needed so far, with one reason per finding (in order, without repeats)."""

    def __init__(self) -> None:
        self.needs: set[Capability] = {READ}
        self.reasons: list[str] = []
        self.count = 0  # findings so far, repeated ones included

    def add(self, cap: Capability, reason: str) -> None:
        self.needs.add(cap)
        self.count += 1
        if reason not in self.reasons:
            self.reasons.append(reason)

    def result(self) -> Classification:
        return Classification(frozenset(self.needs), self.needs == {READ}, tuple(self.reasons))


# --- classification of a command line -----------------------------------------------------------------------


def _script(src: str, f: _Findings, depth: int) -> None:
    if depth > MAX_NESTING:
        f.add(RUN, "shell code nested too deeply to vet")
        return
    _classify_lexed(Lexer(src, depth=depth).lex(), f, depth)


def _classify_lexed(lexer: Lexer, f: _Findings, depth: int) -> None:
    for hazard in lexer.hazards:
        f.add(RUN, hazard)
    for sub in lexer.subs:
        _classify_lexed(sub, f, depth + 1)
    for words, redirs in parts(lexer.tokens):
        for redir, target in redirs:
            _redirect(redir, target, f)
        _simple(words, f, depth)


_OUTPUT_REDIRECTIONS = frozenset({">", ">>", ">|", ">&", "&>", "&>>", "<>"})


def _redirect(redir: Redir, target: Word | None, f: _Findings) -> None:
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
    if target.static and (
        target.text == "/dev/null" or (redir.op == ">&" and re.fullmatch(r"[0-9]*-?", target.text))
    ):
        return  # discarding output or duplicating/closing a descriptor writes no file
    f.add(EDIT, f"output redirection {redir.fd}{redir.op} {target.text} writes a file")


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\[[^\]]*\])?\+?=")
# Variables that only change formatting; anything else (PATH, LD_PRELOAD, GIT_*, BASH_ENV, ...) can change
# which program runs or what it does, so it is never assumed harmless.
_HARMLESS_ENV = re.compile(r"LANG|LANGUAGE|LC_[A-Z]+|TZ|TERM|NO_COLOR|COLUMNS|LINES|POSIXLY_CORRECT")
_PAGER_ENV = frozenset({"PAGER", "GIT_PAGER", "MANPAGER"})
_KEYWORDS = _names(
    "if then else elif fi do done while until for in case esac select function coproc { } [[ ]]"
)


def _check_env(name: str, value: str | None, f: _Findings) -> None:
    if _HARMLESS_ENV.fullmatch(name) or (name in _PAGER_ENV and value in ("", "cat")):
        return
    f.add(RUN, f"setting {name} can change which program runs or what it does")


def _simple(words: list[Word], f: _Findings, depth: int) -> None:
    """One simple command as the shell sees it: assignments, then keywords, then the command."""
    while words and (match := _ASSIGNMENT.match(words[0].text)) and match.end() <= words[0].literal_len:
        if match.group(2):
            f.add(RUN, f"the subscript of {match.group()} is evaluated as arithmetic")
        _check_env(match.group(1), words[0].text[match.end() :] if words[0].static else None, f)
        words = words[1:]
    if not words:
        return
    head = words[0]
    if not head.quoted and head.text in _KEYWORDS:
        f.add(RUN, f"shell keyword {head.text!r}: control structures are not vetted")
        _simple(words[2:] if head.text == "function" else words[1:], f, depth)  # skip a function's name
    elif not head.quoted and head.text == "!":  # negation changes only the exit status
        _simple(words[1:], f, depth)
    else:
        _command(words, f, depth)


_SYSTEM_BIN = frozenset({"/bin", "/usr/bin"})


def _command(words: list[Word], f: _Findings, depth: int) -> None:
    """A command and its arguments after the shell's own syntax is gone (also an argv)."""
    head, args = words[0], words[1:]
    if not head.static:
        f.add(RUN, f"the command name {head.text!r} comes from an expansion or a glob")
        return
    name = head.text
    if "/" in name:
        if posixpath.dirname(name) not in _SYSTEM_BIN:
            f.add(RUN, f"{name}: runs a program by path")
            return
        name = posixpath.basename(name)
    handler = _HANDLERS.get(name)
    if handler is None and _PYTHON.fullmatch(name):
        handler = _python
    if handler is None:
        f.add(RUN, f"{name}: not a known read-only command")
        return
    said = f.count
    handler(name, args, f, depth)
    if f.count == said:  # wrappers let the wrapped command speak for itself
        f.add(READ, f"{name}: read-only")


# --- argument helpers ---------------------------------------------------------------------------------------


def _guard(name: str, args: list[Word], f: _Findings) -> None:
    """For commands whose flags matter: a word the shell may turn into an option makes the call opaque."""
    if any(a.may_be_option for a in args):
        f.add(RUN, f"{name}: an argument from an expansion or a glob could become an option")


def _has_short(args: Iterable[Word], letters: str, takes_value: str = "") -> bool:
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


def _has_long(args: Iterable[Word], names: Iterable[str]) -> bool:
    """Any long option is ``names`` or an abbreviation of one (GNU getopt accepts unique prefixes)."""
    wanted = tuple(names)
    for arg in args:
        if arg.text.startswith("--") and len(arg.text) > 2:
            given = arg.text[2:].partition("=")[0]
            if any(full.startswith(given) for full in wanted):
                return True
    return False


def _operands(args: list[Word]) -> list[Word]:
    for i, arg in enumerate(args):
        if arg.text == "--":
            return [a for a in args[:i] if not _is_option(a)] + args[i + 1 :]
    return [a for a in args if not _is_option(a)]


def _is_option(arg: Word) -> bool:
    return len(arg.text) > 1 and arg.text.startswith("-")


def _after_options(
    args: list[Word],
    takes_value: str = "",
    flags: str = "",
    long_value: Iterable[str] = (),
    long_flags: Iterable[str] = (),
) -> int | None:
    """Index of the first operand, or None when an option (or a dynamic word before it) is not understood."""
    long_value, long_flags = tuple(long_value), tuple(long_flags)
    i = 0
    while i < len(args):
        text = args[i].text
        if not args[i].static:
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
        elif _is_option(args[i]):
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


_Handler = Callable[[str, list[Word], _Findings, int], None]


# --- handlers: read-only commands with dangerous flags ------------------------------------------------------


def _read_only(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    """Known not to write, run or reach out whatever the arguments."""


def _find(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    _guard(name, args, f)
    i = 0
    while i < len(args):
        text = args[i].text
        if text in ("-delete", "-fprint", "-fprint0", "-fprintf", "-fls"):
            f.add(EDIT, f"find {text} modifies files")
        elif text in ("-exec", "-execdir", "-ok", "-okdir"):
            f.add(RUN, f"find {text} runs a command")
            end = next((j for j in range(i + 1, len(args)) if args[j].text in (";", "+")), len(args))
            if end > i + 1:
                _command(args[i + 1 : end], f, depth)
            i = end
        i += 1


def _sort(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    _guard(name, args, f)
    if _has_short(args, "o", "ktST") or _has_long(args, ("output",)):
        f.add(EDIT, "sort -o writes a file")
    if _has_long(args, ("compress-program",)):
        f.add(RUN, "sort --compress-program runs a program")


def _uniq(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    _guard(name, args, f)
    if len(_operands(args)) >= 2:
        f.add(EDIT, "uniq writes its second operand")


def _date(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    _guard(name, args, f)
    if _has_short(args, "s", "dfrI") or _has_long(args, ("set",)):
        f.add(RUN, "date -s sets the system clock")


def _file(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    _guard(name, args, f)
    if _has_short(args, "C", "eFfmP") or _has_long(args, ("compile",)):
        f.add(EDIT, "file -C writes a compiled magic file")


def _printf(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    # Only the first word can be an option; `printf -v 'a[$(cmd)]'` would run cmd in bash.
    _guard(name, args[:1], f)
    if args and args[0].text.startswith("-v"):
        f.add(RUN, "printf -v assigns a shell variable")


def _rg(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    _guard(name, args, f)
    if _has_short(args, "z", "ABCEefgjmMrTt") or _has_long(args, ("pre", "hostname-bin", "search-zip")):
        f.add(RUN, "rg --pre, --hostname-bin or -z runs other programs")


# A sed script is vetted only when it uses print-style commands and `s`/`y` without the `w` or `e` flags.
# GNU sed does not end a regex at a delimiter inside a bracket expression (`s/[/]/x/`), older seds do: a
# bracket is accepted only when it holds plain characters, so both readings find the same delimiters.


def _sed_part(delim: str) -> str:
    d = re.escape(delim)
    classes = r"|\[:[a-z]+:\]" if delim != ":" else ""
    bracket = rf"\[\^?(?:[A-Za-z0-9_ .+*?(){{}}$-]{classes})+\]"  # never `[]...]`: `]` first is literal
    return rf"(?:[^{d}\\\n\[]|\\[^\n]|{bracket})*"


_SED_ADDR = rf"(?:[0-9]+|\$|/{_sed_part('/')}/I?)"
_SED_COMMAND = (
    rf"(?:{_SED_ADDR}(?:,\s*{_SED_ADDR})?)?\s*!?\s*(?:[pdDnNPgGhHxzlqQ=]|y/{_sed_part('/')}/{_sed_part('/')}/|"
    + "|".join(
        rf"s{re.escape(d)}{_sed_part(d)}{re.escape(d)}{_sed_part(d)}{re.escape(d)}[gpIiMm0-9]*"
        for d in "/|#,:@"
    )
    + ")"
)
_SED_SAFE = re.compile(rf"\s*{_SED_COMMAND}\s*(?:[;\n]\s*{_SED_COMMAND}\s*)*;?\s*")
_SED_LONG = _names(
    "quiet silent regexp-extended separate unbuffered null-data posix debug sandbox follow-symlinks"
    " line-length"
)


def _sed(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    _guard(name, args, f)
    scripts: list[tuple[str, bool]] = []  # (text, static)
    script_file = sandbox = in_place = False
    operands: list[Word] = []
    i = 0
    while i < len(args):
        arg, text = args[i], args[i].text
        if text == "--":
            operands += args[i + 1 :]
            break
        if text.startswith("--"):
            opt, eq, value = text[2:].partition("=")
            if opt and "in-place".startswith(opt):
                in_place = True
            elif opt and "expression".startswith(opt):
                if not eq and i + 1 < len(args):
                    i += 1
                    value, arg = args[i].text, args[i]
                scripts.append((value, arg.static))
            elif opt and "file".startswith(opt):
                script_file = True
            elif opt in _SED_LONG:
                sandbox = sandbox or opt == "sandbox"
            else:
                f.add(RUN, f"sed {text}: option not vetted")
        elif _is_option(arg):
            for j, ch in enumerate(text[1:], start=1):
                if ch == "i":  # the rest of the cluster is the backup suffix
                    in_place = True
                    break
                if ch in "efl":
                    value = text[j + 1 :]
                    if not value and i + 1 < len(args):
                        i += 1
                        value, arg = args[i].text, args[i]
                    if ch == "e":
                        scripts.append((value, arg.static))
                    script_file = script_file or ch == "f"
                    break
                if ch not in "nrEsuz":
                    f.add(RUN, f"sed -{ch}: option not vetted")
        else:
            operands.append(arg)
        i += 1
    if not scripts and not script_file and operands:
        scripts.append((operands[0].text, operands[0].static))
    if in_place:
        f.add(EDIT, "sed -i edits files in place")
    if sandbox:  # GNU sed --sandbox rejects the w, W, r, R and e commands
        return
    if script_file or not all(static and _SED_SAFE.fullmatch(text) for text, static in scripts):
        f.add(RUN, "sed script not vetted: it could write files (w) or run commands (e)")
        f.add(EDIT, "sed script not vetted: it could write files (w) or run commands (e)")


def _set(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    # `set -k` would turn later `NAME=value` arguments into environment: only a few options are vetted.
    i = 0
    while i < len(args):
        text = args[i].text
        cluster = re.fullmatch(r"[-+][eEuxvfCn]*(o?)", text) if args[i].static and len(text) > 1 else None
        if cluster and cluster.group(1) and (i + 1 == len(args) or args[i + 1].text in _SET_O):
            i += 2  # `-o NAME`, also at the end of a cluster (`-euo pipefail`)
        elif cluster and not cluster.group(1):
            i += 1
        else:
            f.add(RUN, f"set {text}: not a vetted shell option")
            return


_SET_O = _names("errexit nounset pipefail xtrace verbose noglob noclobber errtrace")


# --- handlers: git ------------------------------------------------------------------------------------------

_GIT_READ = _names(
    "status log diff show rev-parse ls-files blame grep describe version ls-tree rev-list merge-base shortlog"
)
_GIT_EDIT = _names(
    "add commit checkout switch reset restore apply mv rm stash merge rebase cherry-pick revert tag init"
    " clean am notes config worktree gc prune update-index update-ref symbolic-ref commit-tree read-tree"
    " mktag checkout-index"
)
_GIT_NETWORK = _names("clone fetch pull push ls-remote submodule archive")
_GIT_NETWORK_EDIT = _names("clone fetch pull submodule")
_GIT_VALUE_OPTIONS = _names("-C --git-dir --work-tree --namespace")
_GIT_FLAG_OPTIONS = _names(
    "--no-pager -P --paginate -p --bare --no-replace-objects --literal-pathspecs --glob-pathspecs"
    " --noglob-pathspecs --icase-pathspecs --no-optional-locks --version"
)
_BRANCH_LIST_LONG = _names(
    "all remotes list verbose show-current contains no-contains merged no-merged points-at sort format color"
    " no-color column no-column abbrev no-abbrev ignore-case omit-empty"
)
_BRANCH_VALUE = _names("--contains --no-contains --merged --no-merged --points-at --sort")


def _git(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    _guard(name, args, f)
    i = 0
    while i < len(args):
        text = args[i].text
        if text in _GIT_VALUE_OPTIONS:
            i += 2
        elif text.partition("=")[0] in _GIT_VALUE_OPTIONS or text in _GIT_FLAG_OPTIONS:
            i += 1
        elif text.startswith("-"):
            f.add(
                RUN, f"git {text.partition('=')[0]}: option not vetted (-c and --exec-path can name programs)"
            )
            i += 2 if text == "-c" else 1
        else:
            break
    if i >= len(args):
        return
    sub, rest = args[i].text, args[i + 1 :]
    if sub in _GIT_READ:
        if _has_long(rest, ("output",)):
            f.add(EDIT, f"git {sub} --output writes a file")
        if _has_long(rest, ("ext-diff", "open-files-in-pager")) or (
            sub == "grep" and _has_short(rest, "O", "eABCfm")
        ):
            f.add(RUN, f"git {sub}: --ext-diff or --open-files-in-pager runs a program")
    elif sub == "branch":
        _git_branch(rest, f)
    elif sub == "remote":
        _git_remote(rest, f)
    elif sub in _GIT_NETWORK:
        f.add(NETWORK, f"git {sub} reaches a remote")
        if sub in _GIT_NETWORK_EDIT:
            f.add(EDIT, f"git {sub} writes the repository")
    elif sub in _GIT_EDIT:
        f.add(EDIT, f"git {sub} modifies the repository or the work tree")
    else:
        f.add(RUN, f"git {sub}: not a vetted subcommand (aliases can run programs)")


def _git_branch(rest: list[Word], f: _Findings) -> None:
    list_mode = False
    i = 0
    while i < len(rest):
        text = rest[i].text
        if text in _BRANCH_VALUE:
            i += 1
        elif text.startswith("--") and text[2:].partition("=")[0] in _BRANCH_LIST_LONG:
            list_mode = list_mode or text == "--list"
        elif re.fullmatch(r"-[arvil]+", text):
            list_mode = list_mode or "l" in text
        elif not (list_mode and not text.startswith("-")):
            f.add(EDIT, "git branch creates, renames or deletes branches")
            return
        i += 1


def _git_remote(rest: list[Word], f: _Findings) -> None:
    ops = [a.text for a in _operands(rest)]
    if not ops or ops[0] == "get-url":
        return
    if ops[0] in ("show", "update", "prune"):
        f.add(NETWORK, f"git remote {ops[0]} reaches a remote")
    if ops[0] != "show":
        f.add(EDIT, f"git remote {ops[0]} modifies the repository configuration")


# --- handlers: wrappers -------------------------------------------------------------------------------------


def _assignments_then_command(args: list[Word], f: _Findings, depth: int) -> None:
    """``NAME=value ... cmd args`` as ``env`` and ``sudo`` take them."""
    while args and "=" in args[0].text:
        var, _, value = args[0].text.partition("=")
        _check_env(var, value if args[0].static else None, f)
        args = args[1:]
    if args:
        _command(args, f, depth)


def _env(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    idx = _after_options(args, "uC", "i0v", ("unset", "chdir"), ("ignore-environment", "null", "debug"))
    if idx is None:  # e.g. -S, which splits a string into a new command line
        f.add(RUN, "env: option not vetted")
        return
    _assignments_then_command(args[idx:], f, depth)


def _sudo(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    f.add(RUN, "sudo runs the command as another user")
    # --preserve-env takes an optional `=list`, so it is in both sets.
    long_value = _names("user group close-from chdir host prompt role type other-user preserve-env")
    long_flags = _names("preserve-env login shell edit non-interactive list validate set-home")
    idx = _after_options(args, "ugCDhprtUTR", "AbEeHiKklnPSsVv", long_value, long_flags)
    if idx is None:
        return
    if _has_short(args[:idx], "e", "ugCDhprtUTR") or _has_long(args[:idx], ("edit",)):
        f.add(EDIT, "sudo -e edits files")
        return  # its operands are files, not a command
    _assignments_then_command(args[idx:], f, depth)


def _unwrap(
    takes_value: str = "", flags: str = "", long_value: Iterable[str] = (), long_flags: Iterable[str] = ()
) -> _Handler:
    """A wrapper that takes options and then runs its operands as a command (nice, time, command, exec)."""

    def handler(name: str, args: list[Word], f: _Findings, depth: int) -> None:
        idx = _after_options(args, takes_value, flags, long_value, long_flags)
        if idx is None:
            f.add(RUN, f"{name}: option not vetted")
            return
        options, rest = args[:idx], args[idx:]
        if name == "time" and (_has_short(options, "o", "f") or _has_long(options, ("output",))):
            f.add(EDIT, "time -o writes a file")
        if name == "command" and _has_short(options, "vV"):
            return  # `command -v` only looks the name up
        if name == "timeout":
            rest = rest[1:]  # the duration
        if rest:
            _command(rest, f, depth)

    return handler


def _nohup(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    f.add(EDIT, "nohup writes nohup.out when its output is a terminal")
    if args:
        _command(args, f, depth)


def _xargs(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    f.add(RUN, "xargs runs a command built from its input")
    long_value = _names(
        "arg-file delimiter eof replace max-lines max-args max-procs max-chars process-slot-var"
    )
    long_flags = _names("null open-tty interactive no-run-if-empty verbose exit show-limits")
    idx = _after_options(args, "adEILnPs", "0oprtxeil", long_value, long_flags)
    if idx is not None:
        _command(args[idx:] or [Word(text="echo", quoted=True)], f, depth)


def _exec(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    f.add(RUN, "exec replaces the shell")
    idx = _after_options(args, "a", "cl")
    if idx is not None and args[idx:]:
        _command(args[idx:], f, depth)


def _eval(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    f.add(RUN, f"{name} runs a string as shell code")
    if all(a.static for a in args):
        _script(" ".join(a.text for a in args), f, depth + 1)


def _source(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    f.add(RUN, f"{name} runs a script file in the shell")


_SHELL_FLAGS = frozenset("celuxv")


def _shell(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    """``sh -c SCRIPT`` (also ``bash -lc``, ``-e``, ``-o pipefail``) is classified by SCRIPT."""
    has_c = False
    i = 0
    while i < len(args) and args[i].static:
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
    if has_c and i < len(args) and args[i].static:
        _script(args[i].text, f, depth + 1)
    else:
        f.add(RUN, f"{name} runs a script that is not vetted")


# --- handlers: writes, network, package managers, interpreters ----------------------------------------------


def _fixed(*caps: Capability, reason: str) -> _Handler:
    def handler(name: str, args: list[Word], f: _Findings, depth: int) -> None:
        for cap in caps:
            f.add(cap, f"{name} {reason}")

    return handler


_CURL_WRITES = _names(
    "output remote-name remote-name-all output-dir dump-header cookie-jar config trace trace-ascii libcurl"
    " etag-save hsts alt-svc create-dirs stderr"
)


def _curl(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    _guard(name, args, f)
    f.add(NETWORK, "curl reaches the network")
    if _has_short(args, "oODcK", "AbCdEeFHmPQrTtUuwXxYyz") or _has_long(args, _CURL_WRITES):
        f.add(EDIT, "curl writes the response or its state to a file")


def _remote_copy(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    f.add(NETWORK, f"{name} copies over the network")
    f.add(EDIT, f"{name} writes the files it copies")
    if _has_short(args, "oSFD", "cFiJloPS"):
        f.add(RUN, f"{name} -o/-S/-F/-D can run local programs")


def _rsync(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    _guard(name, args, f)
    f.add(EDIT, "rsync writes its destination")
    if any(a.text.startswith("rsync://") or re.match(r"[^/]*:", a.text) for a in _operands(args)):
        f.add(NETWORK, "rsync with a remote reaches the network")
    if _has_short(args, "e", "BfMT") or _has_long(args, ("rsh", "rsync-path")):
        f.add(RUN, "rsync -e/--rsync-path runs a program")


def _netcat(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    f.add(NETWORK, f"{name} opens network connections")
    if _has_short(args, "ec"):
        f.add(RUN, f"{name} -e/-c runs a program")


_PIP_NETWORK = _names("install download wheel")
_NODE_NETWORK = _names("install i ci add update up upgrade exec dlx x create")
_UV_NETWORK = _names("add sync lock run tool remove venv python build publish")


def _installs(name: str, f: _Findings) -> None:
    f.add(NETWORK, f"{name} downloads packages")
    f.add(EDIT, f"{name} writes the packages it installs")


def _pip(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    f.add(RUN, f"{name} runs Python code")
    if {a.text for a in _operands(args)} & _PIP_NETWORK:  # any operand: global options may take values
        _installs(name, f)


def _uv(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    f.add(RUN, "uv runs Python code")
    if {a.text for a in _operands(args)} & (_UV_NETWORK | _PIP_NETWORK):
        _installs(name, f)


def _node_pm(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    f.add(RUN, f"{name} runs package scripts")
    ops = {a.text for a in _operands(args)}
    if (not ops and name == "yarn") or ops & _NODE_NETWORK:
        _installs(name, f)


def _docker(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    ops = [a.text for a in _operands(args)]
    if ops[:1] == ["pull"]:
        f.add(NETWORK, f"{name} pull downloads an image")
        f.add(EDIT, f"{name} pull stores the image")
        return
    f.add(RUN, f"{name} runs containers with the daemon's privileges")
    if ops[:1] and ops[0] in ("run", "build", "create", "push", "login", "search"):
        f.add(NETWORK, f"{name} {ops[0]} may reach a registry")


_PYTHON = re.compile(r"python(?:[23](?:\.[0-9]+)?)?")


def _python(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    f.add(RUN, f"{name} runs code")
    texts = [a.text for a in args]
    if "-m" in texts:
        k = texts.index("-m")
        if texts[k + 1 : k + 2] == ["pip"] and texts[k + 2 : k + 3] and texts[k + 2] in _PIP_NETWORK:
            _installs(f"{name} -m pip", f)


def _perl(name: str, args: list[Word], f: _Findings, depth: int) -> None:
    f.add(RUN, f"{name} runs code")
    if _has_short(args, "i", "eEIMmx"):
        f.add(EDIT, f"{name} -i edits files in place")


_READ_ONLY = (
    "ls cat head tail wc grep egrep fgrep pwd echo true false which stat diff cmp cut tr basename dirname"
    " whoami id uname cd"
)
_EDITORS = "touch mkdir rm rmdir cp mv ln chmod chown chgrp truncate patch tee dd shred unlink mkfifo mktemp"

_HANDLERS: dict[str, _Handler] = {
    **dict.fromkeys(_READ_ONLY.split(), _read_only),
    **dict.fromkeys(_EDITORS.split(), _fixed(EDIT, reason="modifies files")),
    "find": _find,
    "sort": _sort,
    "uniq": _uniq,
    "date": _date,
    "file": _file,
    "printf": _printf,
    "rg": _rg,
    "sed": _sed,
    "set": _set,
    "git": _git,
    "env": _env,
    "sudo": _sudo,
    "nice": _unwrap("n", "0123456789", ("adjustment",)),
    "timeout": _unwrap("sk", "v", ("signal", "kill-after"), ("preserve-status", "foreground", "verbose")),
    "time": _unwrap("fo", "apvq", ("format", "output"), ("append", "portability", "verbose", "quiet")),
    "command": _unwrap("", "pvV"),
    "nohup": _nohup,
    "xargs": _xargs,
    "exec": _exec,
    "eval": _eval,
    "source": _source,
    ".": _source,
    **dict.fromkeys(("sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"), _shell),
    "curl": _curl,
    "wget": _fixed(NETWORK, EDIT, reason="downloads into files"),
    "ssh": _fixed(NETWORK, RUN, reason="runs commands on another host"),
    "scp": _remote_copy,
    "sftp": _remote_copy,
    "rsync": _rsync,
    **dict.fromkeys(("nc", "ncat", "netcat", "telnet", "ftp"), _netcat),
    **dict.fromkeys(
        ("ping", "ping6", "dig", "nslookup", "host", "traceroute"),
        _fixed(NETWORK, reason="reaches the network"),
    ),
    **dict.fromkeys(
        ("apt", "apt-get", "aptitude", "dnf", "yum", "apk"),
        _fixed(NETWORK, EDIT, RUN, reason="installs system packages"),
    ),
    **dict.fromkeys(
        ("npx", "pnpx", "uvx", "pipx", "bunx"), _fixed(NETWORK, RUN, reason="downloads and runs packages")
    ),
    "pip": _pip,
    "pip3": _pip,
    "uv": _uv,
    **dict.fromkeys(("npm", "pnpm", "yarn"), _node_pm),
    "docker": _docker,
    "podman": _docker,
    "perl": _perl,
}
