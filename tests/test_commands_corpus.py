"""A hostile corpus through ``call_facts`` + ``decide(untrusted, [read])``: none of it may run unasked.

The corpus is generated from a small grammar — each handler's dangerous options, crossed with the expansion forms that
hide an option from a literal comparison and with the positions and wrappers around it — plus the hand-written
lines in tests/data/hostile_commands.jsonl. A sample really runs under bash and dash, inside bubblewrap with
only a temporary directory writable, to show that the corpus is honest: those strings do write.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from codex_orchestrator.commands import call_facts
from codex_orchestrator.policy import ApprovalPolicy, Capability, Outcome, ToolKind, decide

DATA = Path(__file__).parent / "data" / "hostile_commands.jsonl"
READ_ONLY = frozenset({Capability.READ})

# A handler's dangerous option (as the program must receive it), with what comes before and after it.
# (command and harmless leading arguments, dangerous option words, trailing arguments)
DANGEROUS: list[tuple[str, str, str]] = [
    ("find .", "-delete", ""),
    ("find . -name x", "-fprint", "out"),
    ("find .", "-fprintf", "out %p"),
    ("find .", "-fls", "out"),
    ("find .", "-exec", "touch m ;"),
    ("find .", "-execdir", "touch m +"),
    ("find .", "-okdir", "touch m ;"),
    ("sort", "-o", "out f"),
    ("sort -u", "--output=out", "f"),
    ("sort", "--compress-program=sh", "f"),
    ("uniq f", "out", ""),
    ("rg foo", "--pre=sh", ""),
    ("rg", "--hostname-bin=sh", "foo"),
    ("rg", "-z", "foo"),
    ("date", "--set=10:00", ""),
    ("date", "-s", "10:00"),
    ("file", "-C", "-m magic"),
    ("file", "--compile", "-m magic"),
    ("printf", "-v", "'a[$(touch m)]' x"),
    ("tree", "-o", "out"),
    ("tree", "-R", ""),
    ("sed", "-i", "s/a/b/ f"),
    ("sed", "--in-place", "s/a/b/ f"),
    ("git log", "--output=out", ""),
    ("git diff", "--output=out", ""),
    ("git show", "--output=out", ""),
    ("git log -p", "--ext-diff", ""),
    ("git show", "--textconv", ""),
    ("git grep", "--open-files-in-pager=sh", "foo"),
    ("git", "-C", "/tmp log"),
    ("git", "--git-dir=/tmp/x", "log"),
    ("git", "-c", "core.pager=sh log"),
    ("test", "-v", "'a[$(touch m)]'"),
    ("env", "-S", "'touch m'"),
    ("time", "-o", "out ls"),
    ("nice", "--adjustment=$(touch m)", "ls"),
    ("jq", ".", "f > out"),
]


def expansion_forms(option: str) -> Iterator[str]:
    """Shell words that can become ``option`` (in bash, in dash, or with a prepared file name)."""
    head, body = (option[:2], option[2:]) if option.startswith("--") else (option[:1], option[1:])
    name, eq, value = body.partition("=")
    if not name:
        return
    yield f"{head}{{{body},x}}"  # -{delete,x}: brace expansion (bash)
    yield f"{head}{{x,{body}}}"
    yield f"{{{option},x}}"
    if len(name) > 1:
        yield f"{head}{name[:1]}{{{name[1:]},}}{eq}{value}"  # -d{elete,}
        yield f"{head}{{{name[0]}..{name[0]}}}{name[1:]}{eq}{value}"  # -{d..d}elete: a sequence
        yield f"{head}{name[:-1]}?{eq}{value}"  # -delet?: a glob matching a prepared file name (dash too)
        yield f"{head}{name[:-1]}[{name[-1]}]{eq}{value}"  # -delet[e]
        yield f"{head}{name[:1]}*{eq}{value}"  # -d*
    yield f"{head}{name}*"
    yield f"$X{option}"  # an empty variable in front
    yield f"{option}$X"
    yield f'"$X"{option}'
    yield f"${{X:-{option}}}"
    yield f"${{X:={option}}}"
    yield f"$'{option}'"  # ANSI-C quoting
    yield "$'\\x2d" + option[1:] + "'"
    yield f'$"{option}"'
    yield f"$(echo {option})"
    yield f"`echo {option}`"
    yield f"$(printf %s {shlex.quote(option)})"
    yield f"~{option}"
    yield f"*{option}"
    yield f"[{option[0]}]{option[1:]}"


WRAPPERS: list[Callable[[str], str]] = [
    lambda c: c,
    lambda c: f"bash -c {shlex.quote(c)}",
    lambda c: f"sh -c {shlex.quote(c)}",
    lambda c: f"env LC_ALL=C {c}",
    lambda c: f"timeout 5 {c}",
    lambda c: f"ls; {c}",
]


def generated() -> list[str]:
    out: list[str] = []
    for prefix, option, suffix in DANGEROUS:
        # The option as it is (already not read-only), then hidden by each expansion form.
        out.append(f"{prefix} {option} {suffix}".strip())
        for i, form in enumerate(expansion_forms(option)):
            line = f"{prefix} {form} {suffix}".strip()
            out.append(WRAPPERS[i % len(WRAPPERS)](line))
    # Globs and braces that add an operand where the count matters.
    for command in ("uniq", "uniq -c", "uniq --", "date", "date -u"):
        for operand in ("in*", "in?", "in[12]", "in{,2}", "{a,b}", "*", "$F", '"$F"', "~"):
            out.append(f"{command} {operand}")
    return out


def hand_written() -> list[str]:
    lines = DATA.read_text(encoding="utf-8").split("\n")
    return [json.loads(line)["command"] for line in lines if '"command"' in line]


def very_long() -> list[str]:
    return [
        "ls " + "a " * 20_000 + "; touch m",
        "echo " + "'x'" * 10_000 + " > out",
        "find . " + "-name x -o " * 2_000 + "-delete",
        "echo " + "$(" * 200 + "touch m" + ")" * 200,
        "bash -c " + shlex.quote("ls; " * 5_000 + "touch m"),
        "git log " + "--oneline " * 5_000 + "--output=out",
    ]


CORPUS = generated() + hand_written() + very_long()


def test_the_corpus_is_large_and_has_every_class() -> None:
    assert len(CORPUS) >= 300
    assert len(hand_written()) >= 150
    lines = [line for line in DATA.read_text(encoding="utf-8").split("\n") if line]
    classes = {json.loads(line).get("class") for line in lines}
    assert {"redirection", "process substitution", "IFS and splitting", "unicode look-alikes"} <= classes


def test_nothing_hostile_runs_unasked() -> None:
    skipped = [
        command
        for command in CORPUS
        if decide(ApprovalPolicy.UNTRUSTED, READ_ONLY, call_facts(ToolKind.SHELL, command)).outcome
        is Outcome.SKIP
    ]
    assert skipped == [], f"{len(skipped)} hostile commands would run unasked: {skipped[:20]}"


# (shells it works in, setup shell code, command, a path it writes or removes). Every command is in the corpus.
EXECUTED: list[tuple[tuple[str, ...], str, str, str]] = [
    (("bash",), "touch victim", "find . -name victim -{delete,true}", "victim"),
    (("bash", "dash"), "touch victim ./-delete", "find . -name victim -delet?", "victim"),
    (("bash", "dash"), "touch victim ./-delete", "find . -name victim -delet[e]", "victim"),
    (("bash", "dash"), "touch ./-fprint", "find . -fprin[t] out", "out"),
    (("bash", "dash"), "echo a > in1; echo b > in2", "uniq in*", "in2"),
    (("bash", "dash"), "echo a > in1; echo b > in2", "uniq in[12]", "in2"),
    (("bash",), "echo a > in", "uniq in{,2}", "in2"),
    (("bash",), "echo b > f", "sort --{output=out,unique} f", "out"),
    (("bash", "dash"), "echo b > f; touch ./-o", "sort -? out f", "out"),
    (("bash",), "echo a > f", "sed -{i,n} s/a/b/ f", "f"),
    (("bash",), "", "printf -{v'a[$(touch m)]',-} x", "m"),
    (
        ("bash",),
        "git init -q && git -c user.name=a -c user.email=b commit -q --allow-empty -m x",
        "git log --{output=out,oneline}",
        "out",
    ),
    (("bash", "dash"), "", "x='. -fprint out'; find $x", "out"),
    (("bash", "dash"), "", "find . $(echo -fprint) out", "out"),
    (("bash",), "", "find . $'-fprint' out", "out"),
    (("bash", "dash"), "", "echo ${x:=$(touch m)}", "m"),
    (("bash",), "", "cat <(touch m)", "m"),
    (("bash",), "", "test -v 'a[$(touch m)]'", "m"),
    (("bash", "dash"), "", "env -S 'touch m'", "m"),
]


def _bwrap_works() -> bool:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _bwrap_works(), reason="needs bubblewrap to confine the hostile commands")
@pytest.mark.parametrize(("shells", "setup", "command", "writes"), EXECUTED)
def test_the_corpus_is_honest_these_really_write(
    tmp_path: Path, shells: tuple[str, ...], setup: str, command: str, writes: str
) -> None:
    """Run under bubblewrap: the whole system read-only, no network, only this test's directory writable."""
    assert command in hand_written(), f"{command!r} is not in the corpus"
    for shell in shells:
        work = tmp_path / shell
        work.mkdir()
        jail = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net"]
        jail += ["--bind", str(work), str(work), "--chdir", str(work), "--setenv", "HOME", str(work)]
        subprocess.run([*jail, shell, "-c", setup], check=True, capture_output=True, timeout=60)
        before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
        subprocess.run([*jail, shell, "-c", command], capture_output=True, timeout=60, check=False)
        target = work / writes
        after = target.read_bytes() if target.is_file() else None
        assert after != before.get(writes), f"{shell}: {command!r} did not change {writes}"
