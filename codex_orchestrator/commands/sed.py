"""The sed handler: a sed script is read-only only when it is literal and uses no command that writes or runs."""

from __future__ import annotations

import re

from codex_orchestrator.commands.args import guard, is_option
from codex_orchestrator.commands.findings import EDIT, RUN, Findings, names
from codex_orchestrator.shell_syntax import Word

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
_SED_LONG = names(
    "quiet silent regexp-extended separate unbuffered null-data posix debug sandbox follow-symlinks"
    " line-length"
)


def sed(name: str, args: list[Word], f: Findings, depth: int) -> None:
    if not guard(name, args, f):
        return
    scripts: list[tuple[str, bool]] = []  # (text, literal)
    script_file = sandbox = in_place = False
    files: list[Word] = []
    i = 0
    while i < len(args):
        arg, text = args[i], args[i].text
        if text == "--":
            files += args[i + 1 :]
            break
        if text.startswith("--"):
            opt, eq, value = text[2:].partition("=")
            if opt and "in-place".startswith(opt):
                in_place = True
            elif opt and "expression".startswith(opt):
                if not eq and i + 1 < len(args):
                    i += 1
                    value, arg = args[i].text, args[i]
                scripts.append((value, arg.literal))
            elif opt and "file".startswith(opt):
                script_file = True
            elif opt in _SED_LONG:
                sandbox = sandbox or opt == "sandbox"
            else:
                f.add(RUN, f"sed {text}: option not vetted")
        elif is_option(arg):
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
                        scripts.append((value, arg.literal))
                    script_file = script_file or ch == "f"
                    break
                if ch not in "nrEsuz":
                    f.add(RUN, f"sed -{ch}: option not vetted")
        else:
            files.append(arg)
        i += 1
    if not scripts and not script_file and files:
        scripts.append((files[0].text, files[0].literal))
    if in_place:
        f.add(EDIT, "sed -i edits files in place")
    if sandbox:  # GNU sed --sandbox rejects the w, W, r, R and e commands
        return
    if script_file or not all(literal and _SED_SAFE.fullmatch(text) for text, literal in scripts):
        f.add(RUN, "sed script not vetted: it could write files (w) or run commands (e)")
        f.add(EDIT, "sed script not vetted: it could write files (w) or run commands (e)")
