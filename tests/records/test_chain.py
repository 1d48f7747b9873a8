"""The tamper-evident records: every event carries the hash of the previous line, several writer processes
still make one chain, the manifest records the head, and ``verify`` names the first edited, deleted, reordered
or appended event, or an approval record the chained answers contradict.

The run under test is real: calls through the gate on real PTYs (one asks and is approved, one is refused by
the policy), finished by its owner."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codex_orchestrator.approvals import Announce, ApprovalAnswer, ApprovalRequest, Decision
from codex_orchestrator.cli import main
from codex_orchestrator.execute import CallInput, GateSettings, execute_call
from codex_orchestrator.policy import ApprovalPolicy, Capability
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.chain import check_chain, verify_run
from codex_orchestrator.records.events import EventLog, genesis_hash, line_hash, read_events
from codex_orchestrator.records.manifest import load_manifest
from codex_orchestrator.records.store import RunRef
from codex_orchestrator.request import Step
from codex_orchestrator.run import RunOwner
from codex_orchestrator.sandbox import SandboxMode
from codex_orchestrator.toolcall import call_id_for
from tests.conftest import ROOT

RUN_ID = "run-chain"
SECRET = "hunter2-s3cret"


class Approve:
    """Answers every question yes, through the ``cli`` channel, as reviewer ``alice``."""

    def ask(self, request: ApprovalRequest, announce: Announce) -> ApprovalAnswer:
        announce(None)
        return ApprovalAnswer(Decision.APPROVE, reason="looks fine", answered_by="cli", reviewer="alice")


def _call(ref: RunRef, name: str, command: str, **gate: object) -> None:
    settings = GateSettings(sandbox=SandboxMode.NONE, profile=[Capability.READ, Capability.RUN], **gate)  # type: ignore[arg-type]
    step = Step(name=name, command=command, approval="required" if name == "asked" else "auto")
    execute_call(
        CallInput(run=ref, call_id=call_id_for("exec", name), milestone="exec", step=step, gate=settings,
                  secret_env=["CHAIN_TEST_SECRET"]),
        Approve(),
    )  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run's directory: an output call that prints a secret, an approved call, a refused one."""
    root = tmp_path_factory.mktemp("chain")
    ref = RunRef(run_id=RUN_ID, task_id="chain", runs_dir=str(root / ".runs"), workspace=str(root))
    mp = pytest.MonkeyPatch()
    mp.setenv("CHAIN_TEST_SECRET", SECRET)
    owner = RunOwner.create(ref, request={}, secrets=[SECRET], with_milestones=False)
    owner.start()
    _call(ref, "talk", f"echo one; echo {SECRET}; echo three")
    _call(ref, "asked", "echo asked")
    _call(ref, "refused", "touch nope", policy=ApprovalPolicy.NEVER)
    owner.finish("denied", 1)
    mp.undo()
    return owner.store.run_dir


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    target = tmp_path / ".runs" / "chain" / "cli" / RUN_ID
    shutil.copytree(finished_run, target)
    return target


def _lines(run_dir: Path) -> list[bytes]:
    return (run_dir / "events.jsonl").read_bytes().splitlines(keepends=True)


def _write(run_dir: Path, lines: list[bytes]) -> None:
    (run_dir / "events.jsonl").write_bytes(b"".join(lines))


def _index(run_dir: Path, kind: str) -> int:
    return next(i for i, line in enumerate(_lines(run_dir)) if json.loads(line)["type"] == kind)


def _verify_cli(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    code = main(["verify", RUN_ID, "--runs-dir", str(run_dir.parents[2]), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_every_event_links_to_the_previous_line_and_the_manifest_holds_the_head(finished_run: Path) -> None:
    raw = _lines(finished_run)
    events = [json.loads(line) for line in raw]
    assert events[0]["prev_hash"] == genesis_hash(RUN_ID)
    for before, event in zip(raw, events[1:], strict=False):
        assert event["prev_hash"] == line_hash(before.rstrip(b"\n"))
    head = load_manifest(finished_run / "manifest.json").chain
    assert head is not None and head.seq == events[-1]["seq"] == len(events)
    assert head.hash == line_hash(raw[-1].rstrip(b"\n"))
    # the approvals are in the chain: asked, and answered by whom
    answered = [e for e in events if e["type"] == "approval.resolved" and e["approval_id"]]
    assert [(e["outcome"], e["answered_by"], e["reviewer"]) for e in answered] == [
        ("approved", "cli", "alice")
    ]
    assert (
        SECRET not in b"".join(raw).decode()
    )  # redaction happened, and the chain is over the redacted bytes


def test_verify_says_ok_for_an_untouched_run(finished_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", RUN_ID, "--runs-dir", str(finished_run.parents[2])]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: run {RUN_ID}:") and "matches the manifest's chain head" in out
    assert "1 approval(s) match" in out


def _edit_output(lines: list[bytes]) -> tuple[list[bytes], int]:
    i = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "output")
    event = json.loads(lines[i])
    lines[i] = lines[i].replace(b"one", b"uno", 1)
    return lines, int(event["seq"])


def test_an_edited_event_is_named(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines, seq = _edit_output(_lines(run_copy))
    _write(run_copy, lines)
    code, out = _verify_cli(run_copy, capsys)
    assert code == 1 and out["ok"] is False
    assert out["problem"] == {"kind": "edited", "seq": seq, "line": seq, "detail": out["problem"]["detail"]}  # type: ignore[index]


def test_an_edited_last_event_is_caught_by_the_head(run_copy: Path) -> None:
    lines = _lines(run_copy)
    lines[-1] = lines[-1].replace(b'"status":"denied"', b'"status":"succeeded"')
    _write(run_copy, lines)
    problem = verify_run(run_copy, RUN_ID).problem
    assert problem is not None and problem.kind == "edited" and problem.seq == len(lines)


def test_a_deleted_event_is_named(run_copy: Path) -> None:
    lines = _lines(run_copy)
    i = _index(run_copy, "attempt.started")
    del lines[i]
    _write(run_copy, lines)
    problem = verify_run(run_copy, RUN_ID).problem
    assert problem is not None and problem.kind == "deleted" and problem.seq == i + 1


def test_deleted_last_events_are_caught_by_the_head(run_copy: Path) -> None:
    lines = _lines(run_copy)
    _write(run_copy, lines[:-2])
    problem = verify_run(run_copy, RUN_ID).problem
    assert problem is not None and problem.kind == "deleted" and problem.seq == len(lines) - 1


def test_reordered_events_are_named(run_copy: Path) -> None:
    lines = _lines(run_copy)
    i = _index(run_copy, "attempt.started")
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
    _write(run_copy, lines)
    problem = verify_run(run_copy, RUN_ID).problem
    assert problem is not None and problem.kind == "reordered" and problem.seq == i + 1


def test_an_appended_event_is_named_even_when_properly_chained(run_copy: Path) -> None:
    n = len(_lines(run_copy))
    log = EventLog(run_copy / "events.jsonl", RUN_ID)  # a writer that links correctly to the last line
    log.emit(ev.RunFinished(status="succeeded", exit_code=0))
    log.close()
    assert check_chain((run_copy / "events.jsonl").read_bytes(), RUN_ID).ok  # the chain alone is fine...
    problem = verify_run(run_copy, RUN_ID).problem  # ...but it goes past the head the manifest recorded
    assert problem is not None and problem.kind == "appended" and problem.seq == n + 1


def test_a_replaced_tail_that_chains_is_called_appended(run_copy: Path) -> None:
    lines = _lines(run_copy)
    _write(run_copy, lines[:-1])  # drop the last event, then write two well-chained ones in its place
    log = EventLog(run_copy / "events.jsonl", RUN_ID)
    log.emit(ev.RunFinished(status="succeeded", exit_code=0))
    log.emit(ev.RunFinished(status="succeeded", exit_code=0))
    log.close()
    problem = verify_run(run_copy, RUN_ID).problem
    assert problem is not None and problem.kind == "appended" and problem.seq == len(lines)


def test_an_approval_record_the_chain_contradicts_is_named(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = next((run_copy / "approvals").glob("*.json"))
    record = json.loads(path.read_text())
    record["answered_by"], record["reviewer"] = "prefect-ui", "mallory"
    path.write_text(json.dumps(record))
    assert main(["verify", RUN_ID, "--runs-dir", str(run_copy.parents[2])]) == 1
    out = capsys.readouterr().out
    assert out.startswith("TAMPERED:") and "approval" in out and "answered_by" in out


def test_verify_of_an_unknown_run_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "nope", "--runs-dir", str(tmp_path)]) == 2
    assert "no run 'nope'" in capsys.readouterr().err


def test_a_torn_line_is_passed_over_and_an_unfinished_run_verifies(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, "r-torn")
    log.emit(ev.MilestoneStarted(milestone="exec"))
    log.close()
    with path.open("ab") as handle:
        handle.write(
            b'{"seq":2,"ts":"2026-01-01T00:00:00.000Z","run_id":"r-torn","data":"}'
        )  # killed mid-line
    log = EventLog(path, "r-torn")
    log.emit(ev.MilestoneFinished(milestone="exec", status="succeeded"))
    log.close()
    report = check_chain(path.read_bytes(), "r-torn")
    assert report.ok and report.events == 2 and report.torn_lines == 1


WRITER = """
import sys
from pathlib import Path
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import EventLog
log = EventLog(Path(sys.argv[1]), "r-many")
for i in range(int(sys.argv[2])):
    log.emit(ev.MilestoneStarted(milestone=f"w{sys.argv[3]}-{i}"))
log.close()
"""


def test_several_writer_processes_make_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), "150", str(w)], cwd=ROOT) for w in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    report = check_chain(path.read_bytes(), "r-many")
    assert report.ok, report.problem
    assert report.events == 600 and [e["seq"] for e in read_events(path)] == list(range(1, 601))


def test_a_question_left_open_is_cancelled_in_the_chain(tmp_path: Path) -> None:
    from codex_orchestrator.records.manifest import ApprovalRecord

    ref = RunRef(run_id="r-open", task_id="chain", runs_dir=str(tmp_path / ".runs"), workspace=str(tmp_path))
    owner = RunOwner.create(ref, request={}, with_milestones=False)
    owner.start()
    record = ApprovalRecord(
        approval_id="tc-x.ap1", tool_call_id="tc-x", purpose="capability", reason="r", requested_at="t"
    )
    owner.store.write_approval(record)
    owner.events.emit(
        ev.ApprovalRequested(
            tool_call_id="tc-x", approval_id="tc-x.ap1", purpose="capability", reason="r", needs=[]
        )
    )
    owner.finish("interrupted", 130)
    cancelled = [e for e in read_events(owner.paths.events) if e["type"] == "approval.resolved"]
    assert [(e["approval_id"], e["outcome"]) for e in cancelled] == [("tc-x.ap1", "cancelled")]
    report = verify_run(owner.store.run_dir, "r-open")
    assert report.ok and report.approvals == 1
