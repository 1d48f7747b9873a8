"""``codex-orchestrator rules check|test`` and ``approve --remember``'s flags, as a user runs them (a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codex_orchestrator.errors import RequestError
from codex_orchestrator.request import parse_request
from codex_orchestrator.rules.loader import RulesError
from tests.rules.codex_check import check_many, codex_binary

RULES = """\
prefix_rule(pattern=["git", "push"], decision="forbidden", justification="no pushes", match=["git push x"])
prefix_rule(pattern=["pytest"], decision="allow")
host_executable(name="git", paths=["/usr/bin/git"])
"""
BAD = """\
prefix_rule(pattern=["git"], decision="allow")
prefix_rule(
    pattern=["npm", "install"],
    decision="prompt",
    match=["npm ci"],
)
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codex_orchestrator.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={
            "PATH": "/usr/bin:/bin",
            "CODEX_HOME": str(cwd / "no-codex-home"),
            "PYTHONPATH": str(Path.cwd()),
        },
    )


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / ".codex" / "rules").mkdir(parents=True)
    (tmp_path / ".codex" / "rules" / "team.rules").write_text(RULES)
    return tmp_path


def test_check_json_is_codexs_output_plus_ours(ws: Path) -> None:
    argv = ["/usr/bin/git", "push", "origin", "main"]
    done = cli("rules", "check", "--json", "--resolve-host-executables", "--", *argv, cwd=ws)
    assert done.returncode == 0, done.stderr
    ours = json.loads(done.stdout)
    (theirs,) = check_many(codex_binary(), [([ws / ".codex/rules/team.rules"], argv)], ws / "home")
    assert {k: ours[k] for k in theirs} == theirs
    assert ours["gate"]["outcome"] == "forbid" and ours["gate"]["rule"]["decision"] == "forbidden"
    assert ours["classifier"]["needs"] == ["network", "read"]


def test_check_text_names_rule_classifier_and_policy(ws: Path) -> None:
    done = cli(
        "rules",
        "check",
        "--policy",
        "untrusted",
        "--profile",
        "read,edit",
        "--",
        "sh",
        "-c",
        "pytest -q && git push",
        cwd=ws,
    )
    assert done.returncode == 0, done.stderr
    assert "forbidden: .codex/rules/team.rules" not in done.stdout.splitlines()[1]  # sh -c itself: no rule
    assert "git push: forbidden" in done.stdout and "pytest -q: allow" in done.stdout
    assert "gate (untrusted, profile edit, read): forbid" in done.stdout


def test_test_passes_good_files_and_names_file_line_example_of_a_bad_one(ws: Path) -> None:
    good = cli("rules", "test", cwd=ws)
    assert good.returncode == 0 and "ok .codex/rules/team.rules: 2 rule(s)" in good.stdout
    (ws / "bad.rules").write_text(BAD)
    bad = cli("rules", "test", "bad.rules", cwd=ws)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("codex-orchestrator rules: error: bad.rules:2: match example `npm ci`"), (
        bad.stderr
    )
    syntax = ws / "syntax.rules"
    syntax.write_text('prefix_rule(pattern=["a"]\n\nx = 1\n')
    bad = cli("rules", "test", "syntax.rules", cwd=ws)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "syntax.rules:3:" in bad.stderr


def test_a_request_with_a_bad_rules_file_is_refused_before_the_run(ws: Path) -> None:
    (ws / "team-extra.rules").write_text(BAD)
    data = {
        "task": "t",
        "workspace": str(ws),
        "steps": [{"name": "s", "command": "true"}],
        "rules": ["team-extra.rules"],
    }
    with pytest.raises(RulesError, match=r"^team-extra.rules:2: match example `npm ci`"):
        parse_request(data)
    with pytest.raises(RequestError, match="does not exist"):
        parse_request({**data, "rules": {"files": ["missing.rules"]}})
    assert parse_request({**data, "rules": {"files": [], "include_user": False}}).rules.include_user is False


def test_approve_flags_exclude_each_other(ws: Path) -> None:
    done = cli("approve", "run-x", "--remember", "--deny", cwd=ws)
    assert done.returncode == 2 and "exclude each other" in done.stderr
