"""Our evaluator against codex's own: ``codex execpolicy check --resolve-host-executables`` of the pinned
openai-codex-cli-bin wheel, over a corpus of rules files and commands (tests/rules/corpus.py).

A codex call costs ~15 ms of CPU, so `make test` checks every (rule set, command) pair where a rule could apply
(the command's program, or its path's basename, has rules in the set: 3,447 pairs) and a deterministic one in
forty of the others, where we claim no rule matches (codex, too, looks rules up by program). The whole cross
product (12,000 codex calls, minutes) runs with CODEX_RULES_AGREEMENT=full.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codex_orchestrator.rules.loader import RulesError, RulesSource, load_sources
from codex_orchestrator.rules.model import path_basename
from tests.rules.codex_check import check_many, codex_binary
from tests.rules.corpus import build

SAMPLE_EVERY = 40  # of the pairs where no rule can apply, one in this many is checked (all with =full)


@pytest.fixture(scope="module")
def codex() -> Path:
    return codex_binary()


def test_corpus_size() -> None:
    corpus = build()
    assert len(corpus.files) >= 20
    assert len(corpus.commands) >= 500
    assert any(len(s) > 1 for s in corpus.sets)


def test_decisions_and_matched_prefixes_agree_with_codex(codex: Path, tmp_path: Path) -> None:
    corpus = build()
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for name, text in corpus.files.items():
        (rules_dir / name).write_text(text, encoding="utf-8")
    full = os.environ.get("CODEX_RULES_AGREEMENT") == "full"
    cwd = os.getcwd()  # codex resolves a relative program path from its working directory; so do we
    jobs: list[tuple[list[Path], tuple[str, ...]]] = []
    ours: list[dict[str, object]] = []
    skipped = 0
    for set_no, names in enumerate(corpus.sets):
        policy = load_sources([RulesSource(str(rules_dir / n), corpus.files[n]) for n in names])
        for cmd_no, argv in enumerate(corpus.commands):
            relevant = argv[0] in policy.rules_by_program or path_basename(argv[0]) in policy.rules_by_program
            turn = set_no + cmd_no
            wanted = relevant or turn % SAMPLE_EVERY == 0
            if not (full or wanted):
                skipped += 1
                continue
            jobs.append(([rules_dir / n for n in names], argv))
            ours.append(policy.check(argv, resolve_host_executables=True, cwd=cwd).as_json())
    theirs = check_many(codex, jobs, tmp_path / "codex-home")
    disagreements = [
        (job[1], [p.name for p in job[0]], mine, codex_said)
        for job, mine, codex_said in zip(jobs, ours, theirs, strict=True)
        if mine != codex_said
    ]
    assert not disagreements, f"{len(disagreements)} of {len(jobs)} disagree, e.g. {disagreements[:3]}"
    decided = [t for t in theirs if "decision" in t]
    # The corpus must exercise every decision and host-executable resolution, not only misses.
    assert {t["decision"] for t in decided} == {"allow", "prompt", "forbidden"}
    assert any("resolvedProgram" in m["prefixRuleMatch"] for t in decided for m in t["matchedRules"])
    assert any(len(t["matchedRules"]) > 1 for t in decided)
    print(f"{len(jobs)} codex checks agree ({len(decided)} with a decision); {skipped} no-rule pairs skipped")


BAD_FILES = {
    "syntax": 'prefix_rule(pattern=["git", "push"]\n',
    "failing match": 'prefix_rule(pattern=["git", "push"], match=[["git", "pull"]])\n',
    "failing not_match": 'prefix_rule(\n    pattern=["git"],\n    not_match=["git status"],\n)\n',
    "bad decision": 'prefix_rule(pattern=["git"], decision="deny")\n',
    "empty pattern": "prefix_rule(pattern=[])\n",
    "explicit None": 'prefix_rule(pattern=["git"], justification=None)\n',
    "empty justification": 'prefix_rule(pattern=["git"], justification="  ")\n',
    "unknown argument": 'prefix_rule(pattern=["git"], reason="x")\n',
    "relative host path": 'host_executable(name="git", paths=["bin/git"])\n',
    "host basename": 'host_executable(name="git", paths=["/usr/bin/gitx"])\n',
    "host name path": 'host_executable(name="a/git", paths=[])\n',
    "unknown function": 'allow_rule(pattern=["git"])\n',
    "empty example": 'prefix_rule(pattern=["git"], match=[""])\n',
    "host defined after its example": (
        'prefix_rule(pattern=["git"], match=["/opt/x/git status"])\nhost_executable(name="git", paths=[])\n'
    ),
}
GOOD_FILES = {
    "positional": 'prefix_rule(["git"], "prompt")\n',
    "example through host": (
        'host_executable(name="git", paths=["/usr/bin/git"])\n'
        'prefix_rule(pattern=["git"], match=["/usr/bin/git status"], not_match=["/opt/git status"])\n'
    ),
    "later host definition counts": (
        'prefix_rule(pattern=["git"], match=["/usr/bin/git status"])\n'
        'host_executable(name="git", paths=["/usr/bin/git"])\n'
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_codex_and_we_refuse_the_same_bad_files(codex: Path, tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.rules"
    path.write_text(BAD_FILES[case], encoding="utf-8")
    with pytest.raises(AssertionError, match="failed to parse policy"):
        check_many(codex, [([path], ("git", "status"))], tmp_path / "home")
    with pytest.raises(RulesError) as caught:
        load_sources([RulesSource("bad.rules", BAD_FILES[case])])
    message = str(caught.value)
    assert "\n" not in message and message.startswith("bad.rules:"), message


@pytest.mark.parametrize("case", sorted(GOOD_FILES))
def test_codex_and_we_accept_the_same_files(codex: Path, tmp_path: Path, case: str) -> None:
    path = tmp_path / "good.rules"
    path.write_text(GOOD_FILES[case], encoding="utf-8")
    argv = ("git", "status")
    (theirs,) = check_many(codex, [([path], argv)], tmp_path / "home")
    ours = load_sources([RulesSource(str(path), GOOD_FILES[case])]).check(argv, resolve_host_executables=True)
    assert ours.as_json() == theirs
