"""The autonomy flow on a real Prefect server: four milestone subflows, approvals as real pauses answered from
code and from the CLI, denial, policy never, a pause timeout, session-cached approvals and the artifacts."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codex_orchestrator.approvals import Decision
from codex_orchestrator.records.paths import RunPaths, artifact_key
from codex_orchestrator.request import RunRequest, parse_request
from tests.conftest import ROOT, validate_events, validate_manifest
from tests.prefect_api import read_final_task_run

pytestmark = pytest.mark.prefect
NETWORK_STEP = {"name": "publish", "command": "true", "capabilities": ["network"]}


def _request(workspace: Path, steps: list[dict[str, Any]], **extra: Any) -> RunRequest:
    data: dict[str, Any] = {
        "task": "flow-test",
        "workspace": str(workspace),
        "approval_policy": "on-request",
        "profile": ["read", "edit", "run"],
        "sandbox": "workspace-write",
        "max_parallel": 1,  # these tests are about approvals, in order; the graph has tests of its own
        "steps": steps,
        "guardrails": [
            {"name": "tests", "command": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]}
        ],
        **extra,
    }
    return parse_request(data)


def _wait_pending(manifest: Path, timeout_s: float = 60.0, index: int = 0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if manifest.exists():
            data = json.loads(manifest.read_text())
            pending = data.get("pending_approval")
            if pending and pending.get("flow_run_id") and len(data["approvals"]) > index:
                return pending  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"no pending approval appeared in {manifest}")


def _run(
    request: RunRequest, answer: Callable[[Path], None] | None = None
) -> tuple[int, dict[str, Any], Path]:
    from flows.runner import run_request

    run_id = f"t-{uuid.uuid4().hex[:10]}"
    paths = RunPaths(Path(request.workspace) / ".runs", request.task, run_id)
    errors: list[BaseException] = []

    def answerer() -> None:
        try:
            assert answer is not None
            answer(paths.manifest)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=answerer, daemon=True) if answer else None
    if thread:
        thread.start()
    request_file = Path(request.workspace).parent / f"request-{run_id}.json"
    request_file.write_text(request.model_dump_json())
    code, manifest_path = run_request(request_file, run_id=run_id, say=lambda _t: None)
    if thread:
        thread.join(timeout=60)
    assert not errors, errors
    assert manifest_path == paths.manifest
    data = validate_manifest(manifest_path)
    validate_events(manifest_path.parent / "events.jsonl")
    return code, data, manifest_path


def _answer_from_code(decision: Decision, reason: str | None = None) -> Callable[[Path], None]:
    from tasks.approval import answer_approval

    def answer(manifest: Path) -> None:
        pending = _wait_pending(manifest)
        api_url = json.loads(manifest.read_text())["prefect"]["api_url"]
        answer_approval(pending["flow_run_id"], decision, reason=reason, answered_by="sdk", api_url=api_url)

    return answer


def test_approval_answered_from_code_runs_all_milestones(prefect_server: str, workspace: Path) -> None:
    steps = [{"name": "inspect", "command": "ls"}, NETWORK_STEP]
    code, data, manifest = _run(_request(workspace, steps), _answer_from_code(Decision.APPROVE))
    assert code == 0 and data["status"] == "succeeded"
    assert [m["status"] for m in data["milestones"]] == ["succeeded"] * 4
    assert all(m["flow_run_id"] for m in data["milestones"])
    publish = data["tool_calls"][1]
    assert publish["approval_source"] == "human" and publish["status"] == "succeeded"
    approval = data["approvals"][0]
    assert approval["outcome"] == "approved" and approval["answered_by"] == "sdk"
    assert data["instructions"][0]["path"] == "AGENTS.md" and len(data["instructions"][0]["sha256"]) == 64
    assert data["metrics"]["approvals_by_source"] == {"human": 1, "not-required": 2}
    _check_task_runs(data)
    assert (manifest.parent / "traces.jsonl").read_text().count('"name":"tool_call"') == 3
    metrics = json.loads((manifest.parents[2] / "metrics.json").read_text())
    assert metrics["runs"][-1]["run_id"] == data["run_id"]
    _check_artifacts(data)
    _check_evidence(data, manifest)


def _check_task_runs(data: dict[str, Any]) -> None:
    """Every call names the Prefect task run it ran in (it used to be null once the call's JSON was cached)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for call in data["tool_calls"]:
            assert call["prefect_task_run_id"], call["id"]
            task_run = read_final_task_run(client, uuid.UUID(call["prefect_task_run_id"]))
            assert task_run.name == f"{call['milestone']}:{call['step']}"


def _check_artifacts(data: dict[str, Any]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        for view in ("manifest", "tool-calls", "metrics"):
            key = artifact_key(data["task_id"], view)
            found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            assert found, f"no artifact {key}"
            if view == "manifest":
                assert any(data["run_id"] in str(a.data) for a in found)


def test_approval_answered_from_the_cli(prefect_server: str, workspace: Path) -> None:
    def answer(manifest: Path) -> None:
        _wait_pending(manifest)
        run_id = manifest.parent.name
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "codex_orchestrator.cli",
                "approve",
                run_id,
                "--for-session",
                "--reason",
                "ok",
                "--runs-dir",
                str(manifest.parents[3]),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "approve-for-session" in done.stdout

    steps = [NETWORK_STEP, {**NETWORK_STEP, "name": "publish-again"}]
    code, data, _ = _run(_request(workspace, steps), answer)
    assert code == 0
    sources = [c["approval_source"] for c in data["tool_calls"][:2]]
    assert sources == ["human", "cache"]  # the second identical call hits the session cache, no pause
    assert data["approval_cache"] == {"hits": 1, "misses": 1}
    assert data["approvals"][0]["answered_by"] == "cli" and data["approvals"][0]["for_session"] is True


def test_denial_fails_the_run_and_skips_verification(prefect_server: str, workspace: Path) -> None:
    steps = [NETWORK_STEP, {"name": "after", "command": "touch after"}]
    code, data, _ = _run(_request(workspace, steps), _answer_from_code(Decision.DENY, "not today"))
    assert code == 1 and data["status"] == "denied"
    assert [c["status"] for c in data["tool_calls"]] == ["denied", "skipped"]
    assert "on_failure: stop" in data["tool_calls"][1]["error"]
    assert data["approvals"][0]["answer_reason"] == "not today"
    assert [m["status"] for m in data["milestones"]] == ["succeeded", "failed", "succeeded", "skipped"]
    assert not (workspace / "after").exists()


def test_policy_never_fails_at_once_without_pausing(prefect_server: str, workspace: Path) -> None:
    started = time.monotonic()
    code, data, _ = _run(_request(workspace, [NETWORK_STEP], approval_policy="never"))
    assert code == 1 and data["status"] == "denied"
    assert data["approvals"] == [] and data["tool_calls"][0]["approval_source"] == "policy"
    assert time.monotonic() - started < 120  # bounded only to catch a hang, not a timing assertion


def test_unanswered_pause_times_out_as_a_denial(prefect_server: str, workspace: Path) -> None:
    code, data, _ = _run(_request(workspace, [NETWORK_STEP], approval_timeout_s=2))
    assert code == 1 and data["status"] == "denied"
    approval = data["approvals"][0]
    assert (
        approval["outcome"] == "denied"
        and approval["source"] == "policy"
        and approval["answered_by"] == "timeout"
    )
    assert data["milestones"][2]["status"] == "succeeded"  # the run went on to record its telemetry


def test_failed_guardrail_fails_the_run(prefect_server: str, workspace: Path) -> None:
    (workspace / "tests" / "test_broken.py").write_text("def test_broken() -> None:\n    assert False\n")
    steps = [{"name": "inspect", "command": "ls"}]
    code, data, _ = _run(_request(workspace, steps, verification={"review": {"policy": "required"}}))
    assert code == 1 and data["status"] == "failed"
    assert data["milestones"][3]["status"] == "failed"
    assert data["metrics"]["guardrails_failed"] == 1
    results = {g["name"]: (g["result"], g["required"]) for g in data["guardrails"]}
    # tests/test_broken.py is code that came without a spec change: spec-guard finds it, but it is advisory.
    assert results == {"spec-guard": ("failed", False), "tests": ("failed", True)}
    # A required guardrail failed: nobody is asked to review (no pause), and the manifest says why.
    assert (data["review"]["verdict"], data["review"]["source"]) == ("skipped", "policy")
    assert "tests" in data["review"]["comments"]


def _check_evidence(data: dict[str, Any], manifest: Path) -> None:
    """The seed's snapshots are written and published as tables, rebuild byte for byte, and the run verifies."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from codex_orchestrator.cli import main
    from codex_orchestrator.records.snapshots import SNAPSHOT_NAMES, SnapshotPaths

    runs_dir = manifest.parents[3]
    assert data["chain"]["seq"] == len(validate_events(manifest.parent / "events.jsonl"))
    assert all(p.is_file() for p in SnapshotPaths(runs_dir, data["task_id"]).files().values())
    assert main(["metrics", "--recompute", data["task_id"], "--runs-dir", str(runs_dir)]) == 0
    assert main(["verify", data["run_id"], "--runs-dir", str(runs_dir)]) == 0
    with get_client(sync_client=True) as client:
        for name in SNAPSHOT_NAMES:
            key = artifact_key(data["task_id"], f"snapshot-{name}")
            found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            assert found and found[0].type == "table", f"no table artifact {key}"
