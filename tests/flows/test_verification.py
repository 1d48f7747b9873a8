"""The verification milestone on a real Prefect server with real git workspaces: diagnostics, spec-guard,
required vs advisory guardrails, and the review gate answered by a reviewer command, from the CLI (approve,
request changes) and refused a skip its policy does not allow."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codex_orchestrator.request import RunRequest, parse_request
from tests.conftest import ROOT, validate_events
from tests.flows.test_autonomy import _run as run_and_answer

pytestmark = pytest.mark.prefect
PY = sys.executable
REVIEWER = str(ROOT / "examples" / "scripted_reviewer.py")
AGENT = str(ROOT / "examples" / "scripted_agent.py")


def _request(workspace: Path, **extra: Any) -> RunRequest:
    data: dict[str, Any] = {
        "task": "verify-test",
        "workspace": str(workspace),
        "approval_policy": "on-request",
        "profile": ["read", "edit", "run"],
        "sandbox": "workspace-write",
        "max_parallel": 1,
        "steps": [
            {"name": "agent", "kind": "agent", "command": [PY, AGENT, "add a multiply function"]},
            {
                "name": "notes",
                "kind": "edit",
                "path": "CHANGELOG.md",
                "append": True,
                "content": "\n- multiply\n",
                "needs": ["agent"],
            },
        ],
        "guardrails": [{"name": "tests", "command": [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider"]}],
        **extra,
    }
    return parse_request(data)


def _run(request: RunRequest, answer: Callable[[Path], None] | None = None) -> tuple[int, dict[str, Any]]:
    """A whole run (tests/flows/test_autonomy.py's driver), with its event log in ``data["_events"]``."""
    code, data, manifest_path = run_and_answer(request, answer)
    data["_events"] = validate_events(manifest_path.parent / "events.jsonl")
    return code, data


def _events(data: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in data["_events"] if e["type"] == kind]


def _wait_review(manifest: Path, timeout_s: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if manifest.exists():
            review = json.loads(manifest.read_text()).get("review")
            if review and review.get("status") == "pending" and review.get("flow_run_id"):
                return review  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"no review waited in {manifest}")


def _approve(manifest: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            PY,
            "-m",
            "codex_orchestrator.cli",
            "approve",
            manifest.parent.name,
            *flags,
            "--runs-dir",
            str(manifest.parents[3]),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_reviewer_command_approves_and_advisory_guardrail_does_not_fail(
    prefect_server: str, workspace: Path
) -> None:
    request = _request(
        workspace,
        guardrails=[
            {"name": "tests", "command": [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider"]},
            {"name": "eval", "command": "echo 'eval: 0.41 < 0.5' >&2; exit 1", "required": False},
        ],
        verification={
            "spec_guard": {"required": True},
            "review": {
                "policy": "required",
                "command": [PY, REVIEWER, "review"],
                "reviewer": [PY, REVIEWER, "verdict"],
            },
        },
    )
    code, data = _run(request)
    assert code == 0 and data["status"] == "succeeded", data.get("error")
    diag = data["diagnostics"]
    assert diag["base_commit"] and diag["files_changed"] == 3  # calc.py, tests/test_multiply.py, CHANGELOG.md
    assert diag["edited_files"] == ["CHANGELOG.md"]
    assert diag["command_files"] == ["calc.py", "tests/test_multiply.py"]
    assert diag["insertions"] > 0 and {"git", "python", "bwrap", "agent:agent"} <= set(diag["tools"])
    results = {g["name"]: (g["result"], g["required"]) for g in data["guardrails"]}
    assert results == {"spec-guard": ("passed", True), "tests": ("passed", True), "eval": ("failed", False)}
    review = data["review"]
    assert review["verdict"] == "approved" and review["source"] == "reviewer"
    assert "scripted_reviewer.py verdict" in review["by"] and review["answered_at"]
    assert "looked at the last" in (review["command_output"] or "")
    assert "advisory findings: eval" in review["comments"]
    events = _events(data, "guardrail.result")
    assert [(e["name"], e["result"], e["required"]) for e in events] == [
        ("spec-guard", "passed", True),
        ("tests", "passed", True),
        ("eval", "failed", False),
    ]
    assert events[1]["call_id"] and events[0]["call_id"] is None
    (verdict,) = _events(data, "review.verdict")
    assert (verdict["verdict"], verdict["source"]) == ("approved", "reviewer")
    (diag_event,) = _events(data, "diagnostics.recorded")
    assert diag_event["files_changed"] == 3
    handoff = _handoff(data)
    assert f"run `{data['run_id']}` — **succeeded**" in handoff
    assert (
        "| eval | **failed** | advisory |" in handoff
        and "**Review** (policy `required`): **approved**" in handoff
    )
    assert f"- manifest: `.runs/verify-test/cli/{data['run_id']}/manifest.json`" in handoff


def _handoff(data: dict[str, Any]) -> str:
    """The run's hand-off artifact, from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from codex_orchestrator.records.paths import artifact_key

    key = artifact_key(data["task_id"], "handoff")
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    texts = [str(a.data) for a in found if data["run_id"] in str(a.data)]
    assert texts, f"no hand-off artifact {key} for run {data['run_id']}"
    return texts[0]


def test_person_approves_from_python_and_a_forbidden_skip_is_refused(
    prefect_server: str, workspace: Path
) -> None:
    outcome: dict[str, subprocess.CompletedProcess[str]] = {}

    from tasks.review import answer_review

    def answer(manifest: Path) -> None:
        review = _wait_review(manifest)
        outcome["skip"] = _approve(manifest, "--skip")  # refused before anything is sent
        outcome["listed"] = subprocess.run(
            [PY, "-m", "codex_orchestrator.cli", "approvals", "--runs-dir", str(manifest.parents[3])],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        api_url = json.loads(manifest.read_text())["prefect"]["api_url"]
        _skip_in_the_ui_form(review["flow_run_id"], api_url)  # not allowed either: the review asks again
        answer_review(  # the Python API; the CLI's own answer is the next test's
            review["flow_run_id"],
            "approve",
            comments="ship it",
            reviewer="ada",
            answered_by="sdk",
            api_url=api_url,
        )

    request = _request(workspace, verification={"review": {"policy": "required"}})
    code, data = _run(request, answer)
    assert outcome["skip"].returncode == 2 and "does not allow skipping" in outcome["skip"].stderr
    assert (
        f"{data['run_id']}  review  the review before hand-off (policy required)" in outcome["listed"].stdout
    )
    assert code == 0 and data["status"] == "succeeded"
    review = data["review"]
    assert (review["verdict"], review["source"], review["by"], review["answered_by"]) == (
        "approved",
        "human",
        "ada",
        "sdk",
    )
    assert review["comments"] == "ship it" and review["flow_run_id"]
    assert len(_events(data, "review.requested")) == 1


def _skip_in_the_ui_form(flow_run_id: str, api_url: str) -> None:
    """What the Prefect UI's Resume form does: resume with the form's values, naming no channel."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + 60
    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            state = client.read_flow_run(UUID(flow_run_id)).state
            if state is not None and state.is_paused() and state.state_details.run_input_keyset:
                form = {"verdict": "skip", "comments": "", "reviewer": ""}
                if client.resume_flow_run(UUID(flow_run_id), run_input=form).status == SetStateStatus.ACCEPT:
                    return
            time.sleep(0.1)
    raise AssertionError("the review never paused for the form")


def test_request_changes_from_the_cli_ends_the_run_changes_requested(
    prefect_server: str, workspace: Path
) -> None:
    outcome: dict[str, subprocess.CompletedProcess[str]] = {}

    def answer(manifest: Path) -> None:
        _wait_review(manifest)
        outcome["changes"] = _approve(manifest, "--request-changes", "--comment", "divide too, please")

    request = _request(workspace, verification={"review": {"policy": "optional"}})
    code, data = _run(request, answer)
    assert outcome["changes"].returncode == 0, outcome["changes"].stderr
    assert code == 1 and data["status"] == "changes-requested"
    review = data["review"]
    assert (review["verdict"], review["source"], review["answered_by"]) == (
        "changes-requested",
        "human",
        "cli",
    )
    assert review["comments"] == "divide too, please"
    (verdict,) = _events(data, "review.verdict")
    assert verdict["comments"] == "divide too, please" and verdict["source"] == "human"
    assert [m["status"] for m in data["milestones"]][-1] == "failed"
    shown = subprocess.run(
        [PY, "-m", "codex_orchestrator.cli", "show", data["run_id"], "--runs-dir", str(workspace / ".runs")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert "  review changes-requested (source human" in shown.stdout and "divide too, please" in shown.stdout
    assert "  guardrail tests                passed   required" in shown.stdout
