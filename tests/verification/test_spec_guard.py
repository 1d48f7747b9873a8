"""spec-guard on real git repositories: each rule each way, the CLI's exit codes and messages, --dry-run."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from codex_orchestrator.verification import spec_guard
from codex_orchestrator.verification.errors import GitError
from codex_orchestrator.verification.settings import SpecGuardSettings
from tests.conftest import ROOT

TODAY = date(2026, 12, 2)
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("x = 1\n")
    (root / "docs" / "spec.md").write_text("---\ntitle: App\nlast_review: 2026-11-20\n---\n# Spec\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "init")
    return root


def _check(repo: Path, base: str | None = None, **settings: object) -> spec_guard.SpecGuardRecord:
    return spec_guard.check(repo, base, SpecGuardSettings.model_validate(settings), today=TODAY)


def test_code_change_without_a_spec_change_is_a_finding_per_code_file(repo: Path) -> None:
    (repo / "src" / "app.py").write_text("x = 2\n")  # unstaged
    (repo / "src" / "new.py").write_text("y = 1\n")  # untracked
    record = _check(repo)
    assert record.status == "failed"
    assert [(f.rule, f.file) for f in record.findings] == [
        ("spec-not-updated", "src/app.py"),
        ("spec-not-updated", "src/new.py"),
    ]
    assert "docs/**" in record.findings[0].message


def test_code_change_with_a_spec_change_passes_also_when_committed_since_base(repo: Path) -> None:
    base = _git(repo, "rev-parse", "HEAD").strip()
    (repo / "src" / "app.py").write_text("x = 2\n")
    (repo / "docs" / "spec.md").write_text("---\nlast_review: 2026-12-01\n---\n# Spec, x is 2\n")
    _git(repo, "commit", "-qam", "x is 2")  # committed after the base: still part of the change
    record = _check(repo, base)
    assert record.status == "passed" and record.findings == []
    assert record.code_files == ["src/app.py"] and record.spec_files == ["docs/spec.md"]
    # Measured from HEAD instead, nothing changed at all.
    assert _check(repo).code_files == []


def test_configured_paths_decide_what_is_spec_code_or_ignored(repo: Path) -> None:
    (repo / "TASKS.txt").write_text("do x\n")
    (repo / "src" / "app.py").write_text("x = 2\n")
    (repo / "build.log").write_text("noise\n")
    assert _check(repo).status == "failed"  # TASKS.txt is no spec by default
    record = _check(repo, spec_paths=["TASKS.txt"], ignore_paths=["*.log"])
    assert record.status == "passed" and record.code_files == ["src/app.py"]
    only_src = _check(repo, code_paths=["src/**"], spec_paths=["nothing/**"], rules=["spec-not-updated"])
    assert [f.file for f in only_src.findings] == ["src/app.py"]  # build.log, TASKS.txt are not code here


def test_stale_last_review_is_a_finding_in_front_matter_or_on_a_line(repo: Path) -> None:
    assert _check(repo).status == "passed"  # reviewed 12 days before TODAY
    (repo / "docs" / "old.md").write_text("# Old\n\nlast_review: 2026-01-02\n")
    (repo / "docs" / "bad.md").write_text("---\nlast_review: soon\n---\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "docs")
    record = _check(repo, rules=["stale-review"])
    assert [(f.rule, f.file) for f in record.findings] == [
        ("stale-review", "docs/bad.md"),
        ("stale-review", "docs/old.md"),
    ]
    assert "334 days old (more than 90)" in record.findings[1].message
    assert "not a date" in record.findings[0].message
    tight = _check(repo, rules=["stale-review"], max_review_age_days=5)
    assert "docs/spec.md" in [f.file for f in tight.findings]  # 12 days > 5
    assert _check(repo, rules=["spec-not-updated"]).status == "passed"  # the rule can be turned off


def test_globs() -> None:
    assert spec_guard.matches("a/b/c.md", ["*.md"]) and spec_guard.matches("c.md", ["**/*.md"])
    assert spec_guard.matches("docs/x/y.py", ["docs/**"]) and not spec_guard.matches(
        "src/docs.py", ["docs/**"]
    )
    assert not spec_guard.matches("a/b.py", ["*.md"]) and spec_guard.matches("a/b.py", ["a/?.py"])


def test_not_a_repository_and_unknown_base_are_errors(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(GitError) as caught:
        _check(tmp_path / "repo" / "docs" / ".." / "..")
    assert caught.value.not_a_repository
    with pytest.raises(GitError):
        _check(repo, "no-such-rev")
    skipped = spec_guard.check_in_run(tmp_path, None, SpecGuardSettings(), today=TODAY)
    assert skipped.status == "skipped" and skipped.detail


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codex_orchestrator.cli", "spec-guard", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def test_cli_fails_on_a_finding_reports_with_dry_run_and_refuses_bad_input(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "src" / "app.py").write_text("x = 3\n")
    done = _cli(cwd=repo)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "src/app.py: spec-not-updated: code changed but none of the spec/task documents "
        "(**/*.md, **/*.rst, docs/**, specs/**) did"
    ]
    dry = _cli("--dry-run", "--json", cwd=repo)
    assert dry.returncode == 0 and json.loads(dry.stdout)["findings"][0]["file"] == "src/app.py"
    bad = _cli("--base", "nope", cwd=repo)
    assert bad.returncode == 2 and bad.stderr.strip().endswith(
        "--base: unknown revision 'nope' in " + str(repo)
    )
    outside = _cli("--workspace", str(tmp_path), cwd=repo)
    assert outside.returncode == 2 and "is not a git repository" in outside.stderr
    assert len(outside.stderr.strip().splitlines()) == 1
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "task": "t",
                "workspace": str(repo),
                "steps": [{"name": "a", "command": "true"}],
                "verification": {"spec_guard": {"spec_paths": ["src/app.py"]}},
            }
        )
    )
    assert _cli("--request", str(request), cwd=tmp_path).returncode == 0  # app.py is a spec there
