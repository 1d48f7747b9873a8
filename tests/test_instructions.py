"""The codex-compatible instruction hierarchy (instructions.py) and drift's comparison (drift.py)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from codex_orchestrator import drift
from codex_orchestrator.errors import RequestError
from codex_orchestrator.instructions import (
    PROJECT_DOC_SEPARATOR,
    InstructionSettings,
    candidate_filenames,
    load_instruction_set,
)
from codex_orchestrator.records.manifest import InstructionRecord
from codex_orchestrator.request import parse_request


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg" / "sub").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "codex-home").mkdir()
    return {"CODEX_HOME": str(tmp_path / "codex-home")}


def test_global_then_each_directory_root_first_one_file_each(repo: Path, home: dict[str, str]) -> None:
    codex_home = Path(home["CODEX_HOME"])
    (codex_home / "AGENTS.md").write_text("global default\n")
    (codex_home / "AGENTS.override.md").write_text("global override\n")
    (repo / "AGENTS.md").write_text("root rules\n")
    (repo / "pkg" / "AGENTS.md").write_text("pkg default\n")
    (repo / "pkg" / "AGENTS.override.md").write_text("pkg override\n")
    (repo / "pkg" / "sub" / "TEAM.md").write_text("sub fallback\n")
    settings = InstructionSettings(fallback_filenames=["TEAM.md"])
    found = load_instruction_set(repo, "pkg/sub", settings, environ=home)
    assert [s.path for s in found.sources] == [
        "$CODEX_HOME/AGENTS.override.md",
        "AGENTS.md",
        "pkg/AGENTS.override.md",
        "pkg/sub/TEAM.md",
    ]
    assert found.text == (
        "global override" + PROJECT_DOC_SEPARATOR + "root rules\n\npkg override\n\nsub fallback"
    )
    assert found.sha256 == hashlib.sha256(found.text.encode()).hexdigest()
    assert [s.scope for s in found.sources] == ["global", "project", "project", "project"]
    # From the root, the deeper directories are not read.
    assert [s.path for s in load_instruction_set(repo, ".", settings, environ=home).sources][1:] == [
        "AGENTS.md"
    ]


def test_empty_global_override_falls_back_but_an_empty_project_override_shadows(
    repo: Path, home: dict[str, str]
) -> None:
    codex_home = Path(home["CODEX_HOME"])
    (codex_home / "AGENTS.override.md").write_text("  \n")
    (codex_home / "AGENTS.md").write_text("global\n")
    (repo / "AGENTS.override.md").write_text("\n")
    (repo / "AGENTS.md").write_text("never read\n")
    found = load_instruction_set(repo, ".", environ=home)
    assert [s.path for s in found.sources] == ["$CODEX_HOME/AGENTS.md", "AGENTS.override.md"]
    assert found.text == "global"


def test_the_walk_starts_at_the_nearest_git_root_and_without_one_only_cwd(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / "a").mkdir(parents=True)
    (plain / "AGENTS.md").write_text("root\n")
    (plain / "a" / "AGENTS.md").write_text("a\n")
    off = InstructionSettings(include_global=False)
    assert [s.path for s in load_instruction_set(plain, "a", off).sources] == ["a/AGENTS.md"]
    (plain / "a" / ".git").mkdir()  # a nested repository: its root is where the walk starts
    (plain / ".git").mkdir()
    assert [s.path for s in load_instruction_set(plain, "a", off).sources] == ["a/AGENTS.md"]
    (plain / "a" / ".git").rmdir()
    assert [s.path for s in load_instruction_set(plain, "a", off).sources] == ["AGENTS.md", "a/AGENTS.md"]


def test_the_budget_cuts_the_crossing_file_drops_the_rest_and_hashes_stay_whole(repo: Path) -> None:
    first = "é" * 30 + "\n"  # 61 bytes; the cut must not split a two-byte character
    (repo / "AGENTS.md").write_text(first)
    (repo / "pkg" / "AGENTS.md").write_text("second file\n")
    settings = InstructionSettings(max_bytes=40, include_global=False)
    found = load_instruction_set(repo, "pkg", settings)
    root, pkg = found.sources
    assert (
        root.included_bytes == 40
        and root.truncated
        and root.sha256 == hashlib.sha256(first.encode()).hexdigest()
    )
    assert pkg.included_bytes == 0 and pkg.size_bytes == len("second file\n")
    assert found.text == "é" * 20
    assert len(found.warnings) == 2 and "40 of 61 bytes kept (budget 40 bytes)" in found.warnings[0]


def test_binary_and_non_utf8_files_are_refused_naming_the_file(repo: Path) -> None:
    (repo / "pkg" / "AGENTS.md").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(RequestError, match=r"'pkg/AGENTS.md' is not UTF-8 text"):
        load_instruction_set(repo, "pkg", InstructionSettings(include_global=False))
    (repo / "pkg" / "AGENTS.md").write_bytes(b"rules\x00binary")
    with pytest.raises(RequestError, match=r"'pkg/AGENTS.md' is binary"):
        load_instruction_set(repo, "pkg", InstructionSettings(include_global=False))


def test_a_request_refuses_a_bad_file_in_a_step_cwd_and_reads_a_bare_list_as_extra(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "nowhere"))
    (repo / "NOTES.md").write_text("extra\n")
    request = parse_request(
        {
            "task": "t",
            "workspace": str(repo),
            "steps": [{"name": "s", "command": "ls"}],
            "instructions": ["NOTES.md"],
        }
    )
    assert request.instructions.extra == ["NOTES.md"] and request.on_instruction_drift == "warn"
    (repo / "pkg" / "AGENTS.md").write_bytes(b"\x00")
    with pytest.raises(RequestError, match="binary"):
        parse_request(
            {"task": "t", "workspace": str(repo), "steps": [{"name": "s", "command": "ls", "cwd": "pkg"}]}
        )
    with pytest.raises(RequestError, match="on_instruction_drift"):
        parse_request(
            {
                "task": "t",
                "workspace": str(repo),
                "steps": [{"name": "s", "command": "ls"}],
                "on_instruction_drift": "x",
            }
        )


def test_candidates_are_override_default_then_unique_fallbacks() -> None:
    assert candidate_filenames(["CODEX.md", "AGENTS.md", " ", "CODEX.md"]) == (
        "AGENTS.override.md",
        "AGENTS.md",
        "CODEX.md",
    )


def _src(path: str, sha: str) -> InstructionRecord:
    return InstructionRecord(path=path, sha256=sha, bytes=1)


def test_drift_per_source_added_removed_changed() -> None:
    before = [_src("AGENTS.md", "a"), _src("pkg/AGENTS.md", "b"), _src("old.md", "c")]
    after = [_src("AGENTS.md", "a2"), _src("pkg/AGENTS.md", "b"), _src("new.md", "d")]
    changes = drift.compare(before, after)
    assert [(c.path, c.change) for c in changes] == [
        ("AGENTS.md", "changed"),
        ("new.md", "added"),
        ("old.md", "removed"),
    ]
    record = drift.drift_record(("run-1", before), after, "ask")
    assert record.status == "drifted" and record.decision == "pending" and record.previous_run_id == "run-1"
    assert drift.drift_record(("run-1", before), before, "ask").status == "unchanged"
    assert drift.drift_record(None, after, "warn").status == "first-run"


@pytest.mark.parametrize(("policy", "logged"), [("warn", True), ("ignore", False)])
def test_the_foundation_records_drift_against_the_previous_run(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, policy: str, logged: bool
) -> None:
    import logging

    from codex_orchestrator.records.events import read_events
    from codex_orchestrator.records.store import RunRef
    from codex_orchestrator.run import RunOwner
    from tasks.foundation import load_instruction_files, record_instructions

    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "nowhere"))
    (repo / "AGENTS.md").write_text("v1\n")
    (repo / "old.md").write_text("extra\n")

    def foundation(run_id: str, extra: list[str]) -> RunOwner:
        data = {
            "task": "t",
            "workspace": str(repo),
            "steps": [{"name": "s", "command": "ls"}],
            "instructions": extra,
        }
        request = parse_request({**data, "on_instruction_drift": policy})
        ref = RunRef(run_id=run_id, task_id="t", runs_dir=str(repo / ".runs"), workspace=request.workspace)
        owner = RunOwner.create(ref, request=request.model_dump(mode="json"))
        loaded = load_instruction_files.fn(ref, request.instructions, request.step_cwds())
        record_instructions(owner, request, loaded, logging.getLogger(__name__))
        owner.begin_milestone("foundation")
        owner.end_milestone("foundation", "succeeded")
        return owner

    foundation("run-1", ["old.md"]).finish("succeeded", 0)
    (repo / "AGENTS.md").write_text("v2\n")
    owner = foundation("run-2", [])
    state = owner.state()
    assert state.drift is not None and state.drift.previous_run_id == "run-1"
    assert [(c.path, c.change) for c in state.drift.changes] == [
        ("AGENTS.md", "changed"),
        ("old.md", "removed"),
    ]
    assert state.drift.decision == ("warned" if logged else "recorded")
    owner.finish("succeeded", 0)
    drifts = [e for e in read_events(owner.paths.events) if e["type"] == "instructions.drift"]
    assert len(drifts) == (1 if logged else 0)
