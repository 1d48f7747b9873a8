"""The verification policy as pure functions: guardrail results, the run status rule, the reviewer's verdict
JSON, and diagnostics of a real repository's change."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from codex_orchestrator.records.manifest import Manifest, ToolCallRecord
from codex_orchestrator.run import run_outcome
from codex_orchestrator.verification import diagnostics, guardrails
from codex_orchestrator.verification import review as rv
from codex_orchestrator.verification.records import GuardrailRecord, ReviewRecord


def _call(status: str, exit_code: int | None = None, **fields: Any) -> ToolCallRecord:
    return ToolCallRecord(
        id=f"tc-{status}",
        step="s",
        milestone="verification",
        kind="shell",
        command="c",
        cwd=".",
        status=status,
        exit_code=exit_code,
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("call", "result"),
    [
        (_call("succeeded", 0), "passed"),
        (_call("failed", 1), "failed"),
        (_call("failed", 127), "error"),  # the shell could not find it
        (_call("failed", None, failure="not-started"), "error"),
        (_call("failed", 255, failure="ssh-connection-lost"), "error"),
        (_call("denied", None), "error"),
        (_call("timed-out", None), "error"),
        (_call("skipped", None, error="needs 'lint', which failed"), "skipped"),
        (None, "skipped"),
    ],
)
def test_guardrail_result_from_its_call(call: ToolCallRecord | None, result: str) -> None:
    assert guardrails.classify(call)[0] == result


def _manifest(
    calls: list[ToolCallRecord], results: list[GuardrailRecord], review: ReviewRecord | None
) -> Manifest:
    return Manifest(
        run_id="r",
        task_id="t",
        run_dir=".runs/t/cli/r",
        created_at="x",
        updated_at="x",
        heartbeat_at="x",
        tool_calls=calls,
        guardrails=results,
        review=review,
    )


def test_run_status_rule_required_vs_advisory_and_review() -> None:
    exec_ok = ToolCallRecord(
        id="tc-a", step="a", milestone="exec", kind="shell", command="c", cwd=".", status="succeeded"
    )
    lint = _call("failed", 1)
    advisory = [GuardrailRecord(name="lint", result="failed", required=False, call_id=lint.id)]
    required = [GuardrailRecord(name="lint", result="failed", required=True, call_id=lint.id)]
    assert run_outcome(_manifest([exec_ok, lint], advisory, None)) == "succeeded"
    assert run_outcome(_manifest([exec_ok, lint], required, None)) == "failed"
    # An advisory guardrail that was refused does not make the run "denied" either.
    denied = _call("denied")
    assert (
        run_outcome(
            _manifest(
                [exec_ok, denied],
                [GuardrailRecord(name="x", result="error", required=False, call_id=denied.id)],
                None,
            )
        )
        == "succeeded"
    )
    changes = ReviewRecord(policy="optional", status="answered", verdict="changes-requested", source="human")
    assert run_outcome(_manifest([exec_ok], [], changes)) == "changes-requested"
    assert run_outcome(_manifest([exec_ok], [], changes), required_ok=False) == "changes-requested"
    timed_out = ReviewRecord(policy="required", status="answered", verdict="skipped", source="policy")
    assert run_outcome(_manifest([exec_ok], [], timed_out)) == "failed"
    skipped = timed_out.model_copy(update={"policy": "optional"})
    assert run_outcome(_manifest([exec_ok], [], skipped)) == "succeeded"
    # The review's own calls (a failing review command) do not count.
    review_cmd = _call("failed", 3)
    with_cmd = skipped.model_copy(update={"command_call_id": review_cmd.id})
    assert run_outcome(_manifest([exec_ok, review_cmd], [], with_cmd)) == "succeeded"


def test_reviewer_verdict_json() -> None:
    out = 'reviewer: reading\r\n{"verdict": "changes-requested", "comments": "add tests"}\r\n'
    assert rv.parse_reviewer_output(out, "required") == ("changes-requested", "add tests")
    assert rv.parse_reviewer_output('{"verdict": "approve"}', "optional") == ("approved", None)
    assert rv.parse_reviewer_output('{"verdict": "skip"}', "optional") == ("skipped", None)
    with pytest.raises(rv.ReviewVerdictError, match="does not allow"):
        rv.parse_reviewer_output('{"verdict": "skip"}', "required")
    with pytest.raises(rv.ReviewVerdictError, match="unknown verdict"):
        rv.parse_reviewer_output('{"verdict": "lgtm"}', "required")
    with pytest.raises(rv.ReviewVerdictError, match="no verdict"):
        rv.parse_reviewer_output("looks fine to me\n{not json", "required")


def test_diagnostics_of_a_real_change(workspace: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    base = subprocess.run(
        [*git, "rev-parse", "HEAD"], cwd=workspace, capture_output=True, text=True
    ).stdout.strip()
    (workspace / "calc.py").write_text(
        (workspace / "calc.py").read_text() + "\n\ndef neg(a: int) -> int:\n    return -a\n"
    )
    subprocess.run([*git, "commit", "-qam", "neg"], cwd=workspace, check=True)
    (workspace / "CHANGELOG.md").write_text("- neg\n")  # uncommitted, replaces the file
    (workspace / "notes.txt").write_text("one\ntwo")  # untracked, no final newline
    (workspace / "blob.bin").write_bytes(b"\0\1\2")
    record = diagnostics.measure(
        workspace, base, edited=["CHANGELOG.md"], probes={"sh": ["sh", "-c", "echo sh 1.0"]}, now="t"
    )
    by = {f.path: (f.insertions, f.deletions, f.by) for f in record.files}
    assert by["calc.py"] == (4, 0, "command") and by["notes.txt"] == (2, 0, "command")
    assert by["blob.bin"] == (None, None, "command") and by["CHANGELOG.md"][2] == "edit"
    assert record.files_changed == 4 and record.edited_files == ["CHANGELOG.md"]
    assert record.command_files == ["blob.bin", "calc.py", "notes.txt"]
    assert (
        record.head_commit != base
        and record.tools["sh"] == "sh 1.0"
        and record.tools["git"].startswith("git version")
    )
    assert diagnostics.summary_line(record).startswith("4 files changed, ")
    missing = diagnostics.measure(
        workspace, None, edited=[], probes={"nope": ["no-such-tool-x", "--version"]}, now="t"
    )
    assert missing.error and missing.tools["nope"].startswith("unknown")


def test_terminal_review_prompt_refuses_a_forbidden_skip_and_reads_comments() -> None:
    import io

    from rich.console import Console

    pkg = rv.package(
        run_id="r",
        task_id="t",
        goal="",
        policy="required",
        diagnostics=None,
        guardrails=[],
        spec_guard=None,
        command_output="review: fine",
    )
    console = Console(file=io.StringIO(), width=100)
    assert rv.prompt_review(pkg, stdin=io.StringIO("s\nr\nplease add divide\n"), console=console) == (
        "request-changes",
        "please add divide",
    )
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "please answer" in shown and "skipping is not allowed" in shown and "review: fine" in shown
    optional = pkg.model_copy(update={"policy": "optional"})
    assert rv.prompt_review(optional, stdin=io.StringIO("s\n\n"), console=console) == ("skip", None)
    assert (
        rv.prompt_review(pkg, stdin=io.StringIO(""), console=console)[0] == "request-changes"
    )  # end of input
