"""pre_tool_call / post_tool_call hooks (hooks.py) around real tool calls: deny with a reason, add context the
command sees, a post hook that reads the call's record, and a broken hook that does not stop the call."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from codex_orchestrator.approvals import NoApprover
from codex_orchestrator.execcmd import ExecOptions, call_input, run_exec
from codex_orchestrator.hooks import HookSettings, decide
from codex_orchestrator.records.events import read_events
from codex_orchestrator.sandbox import SandboxMode
from tests.conftest import validate_events, validate_manifest


def _script(path: Path, body: str) -> list[str]:
    path.write_text("import json, sys\n" + body)
    return [sys.executable, str(path)]


def _exec(tmp_path: Path, argv: list[str], hooks: HookSettings, run_id: str) -> tuple[dict, list[dict]]:  # type: ignore[type-arg]
    options = ExecOptions(
        argv=tuple(argv), workspace=tmp_path, cwd=tmp_path, run_id=run_id, sandbox=SandboxMode.NONE
    )
    call = call_input(options).model_copy(update={"hooks": hooks})
    result = run_exec(call, NoApprover("no reviewer in this test"))
    manifest = validate_manifest(result.manifest)
    return manifest, validate_events(result.manifest.parent / "events.jsonl")


def test_a_pre_hook_denies_with_its_reason_and_the_call_never_runs(tmp_path: Path) -> None:
    seen = tmp_path / "pre-stdin.json"
    pre = _script(
        tmp_path / "pre.py",
        f"open({str(seen)!r}, 'w').write(sys.stdin.read())\n"
        "sys.stderr.write('no deploys on fridays')\nsys.exit(2)\n",
    )
    marker = tmp_path / "ran"
    manifest, events = _exec(tmp_path, ["touch", str(marker)], HookSettings(pre_tool_call=pre), "hook-deny")
    (call,) = manifest["tool_calls"]
    assert not marker.exists()
    assert call["status"] == "denied" and call["approval_source"] == "hook"
    assert "no deploys on fridays" in call["error"]
    assert call["hooks"] == [
        {
            "hook": "pre_tool_call",
            "decision": "deny",
            "reason": "no deploys on fridays",
            "context": None,
            "exit_code": 2,
            "duration_ms": call["hooks"][0]["duration_ms"],
        }
    ]
    payload = json.loads(seen.read_text())
    assert payload["hook_event_name"] == "pre_tool_call" and payload["step"] == "exec"
    assert "touch" in payload["command"] and payload["tool_call_id"] == call["id"]
    resolved = [e for e in events if e["type"] == "approval.resolved"]
    assert resolved and resolved[-1]["source"] == "hook" and resolved[-1]["outcome"] == "denied"
    assert manifest["status"] == "denied"


def test_context_reaches_the_command_and_the_post_hook_sees_the_record(tmp_path: Path) -> None:
    pre = _script(tmp_path / "pre.py", "print(json.dumps({'context': 'use the staging cluster'}))\n")
    record_seen = tmp_path / "post-stdin.json"
    post = _script(
        tmp_path / "post.py",
        f"open({str(record_seen)!r}, 'w').write(sys.stdin.read())\n"
        "print(json.dumps({'decision': 'block', 'reason': 'output looks wrong'}))\n",
    )
    out = tmp_path / "context.txt"
    argv = ["/bin/sh", "-c", f'printf %s "$CODEX_ORCHESTRATOR_HOOK_CONTEXT" > {out}']
    manifest, _ = _exec(tmp_path, argv, HookSettings(pre_tool_call=pre, post_tool_call=post), "hook-context")
    (call,) = manifest["tool_calls"]
    assert out.read_text() == "use the staging cluster"
    assert call["status"] == "succeeded"
    pre_rec, post_rec = call["hooks"]
    assert (pre_rec["decision"], pre_rec["context"]) == ("allow", "use the staging cluster")
    assert (post_rec["hook"], post_rec["decision"], post_rec["reason"]) == (
        "post_tool_call",
        "block",
        "output looks wrong",
    )
    seen = json.loads(record_seen.read_text())
    assert seen["hook_event_name"] == "post_tool_call"
    assert seen["record"]["status"] == "succeeded" and seen["record"]["exit_code"] == 0


def test_a_broken_hook_is_recorded_and_the_call_goes_on(tmp_path: Path) -> None:
    manifest, events = _exec(
        tmp_path,
        ["true"],
        HookSettings(pre_tool_call=[str(tmp_path / "missing-hook")], post_tool_call="exit 7"),
        "hook-broken",
    )
    (call,) = manifest["tool_calls"]
    assert call["status"] == "succeeded"
    assert [(h["hook"], h["decision"]) for h in call["hooks"]] == [
        ("pre_tool_call", "error"),
        ("post_tool_call", "error"),
    ]
    assert "cannot run the hook" in call["hooks"][0]["reason"] and call["hooks"][1]["exit_code"] == 7
    assert read_events(Path(tmp_path / ".runs/exec/cli/hook-broken/events.jsonl"))[-1]["type"] == "summary"
    assert events[-1]["status"] == "succeeded"


@pytest.mark.parametrize(
    ("hook", "code", "stdout", "stderr", "expected"),
    [
        ("pre_tool_call", 0, "", "", ("allow", None, None)),
        ("pre_tool_call", 0, "plain context\n", "", ("allow", None, "plain context")),
        ("pre_tool_call", 0, '{"decision": "deny", "reason": "r"}', "", ("deny", "r", None)),
        ("pre_tool_call", 0, '{"additionalContext": "c"}', "", ("allow", None, "c")),
        ("pre_tool_call", 2, '{"reason": "json reason"}', "stderr reason", ("deny", "json reason", None)),
        ("pre_tool_call", 2, "", "stderr reason\n", ("deny", "stderr reason", None)),
        ("post_tool_call", 2, "", "", ("block", "refused by the hook", None)),
        ("pre_tool_call", 1, "", "boom", ("error", "exit code 1: boom", None)),
    ],
)
def test_decide_follows_the_exit_code_contract(
    hook: str, code: int, stdout: str, stderr: str, expected: tuple[str, str | None, str | None]
) -> None:
    assert decide(hook, code, stdout, stderr) == expected  # type: ignore[arg-type]
