"""The run's exec-policy rules decide an agent's own tool calls as they decide a step's command, and
approve-and-remember answers codex with the rule it proposed (real codex binary, scripted model, real sandbox)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codex_orchestrator.approvals import Announce, ApprovalAnswer, ApprovalRequest, Decision
from codex_orchestrator.policy import ApprovalPolicy, Capability
from codex_orchestrator.rules.sources import RulesSettings, load_policy
from tests.agents.helpers import CALC, STEP_CALL_ID, new_workspace, run_agent

pytestmark = pytest.mark.sandbox


class Remembering:
    """Approves the agent step itself, answers each of the agent's own calls approve-and-remember, and keeps
    those questions."""

    def __init__(self) -> None:
        self.asked: list[ApprovalRequest] = []

    def ask(self, request: ApprovalRequest, announce: Announce) -> ApprovalAnswer:
        if request.tool_call_id == STEP_CALL_ID:  # the step's own grant (untrusted asks to start an agent)
            return ApprovalAnswer(Decision.APPROVE, answered_by="sdk")
        self.asked.append(request)
        return ApprovalAnswer(Decision.APPROVE_AND_REMEMBER, answered_by="sdk")


@pytest.fixture(autouse=True)
def _no_user_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "codex-home"
    home.mkdir()
    monkeypatch.setenv("CODEX_HOME", str(home))  # the user-level rules this test sees: none


def test_a_forbidden_rule_declines_the_agents_command_naming_the_rule(tmp_path: Path) -> None:
    workspace, ref = new_workspace(tmp_path)
    rules = workspace / ".codex" / "rules"
    rules.mkdir(parents=True)
    (rules / "team.rules").write_text(
        'prefix_rule(pattern=["cat"], decision="forbidden", justification="read files with the editor")\n'
    )
    run, _model = run_agent(
        tmp_path,
        [[{"exec": "cat calc.py"}], [{"message": "could not read it"}]],
        workspace=(workspace, ref),
        profile=(Capability.READ, Capability.EDIT, Capability.RUN),  # the profile alone would run it
    )
    assert run.record.status == "succeeded", run.record.error  # the agent was told and went on
    [call] = run.calls
    assert call["status"] == "denied" and call["approval_source"] == "policy"
    assert "read files with the editor" in call["error"]
    assert call["rule"]["decision"] == "forbidden"
    assert call["rule"]["file"].endswith("team.rules") and call["rule"]["matched_prefix"] == ["cat"]


def test_approve_and_remember_writes_codexs_proposed_rule_and_the_next_match_runs_unasked(
    tmp_path: Path,
) -> None:
    workspace, ref = new_workspace(tmp_path)
    approver = Remembering()
    run, _model = run_agent(
        tmp_path,
        [
            [{"exec": "touch made_by_agent.txt"}],
            [{"exec": "touch made_by_agent.txt"}],
            [{"message": "touched it twice"}],
        ],
        workspace=(workspace, ref),
        approver=approver,
        policy=ApprovalPolicy.UNTRUSTED,
        profile=(Capability.READ,),
    )
    assert run.record.status == "succeeded", run.record.error
    assert len(approver.asked) == 1  # the second, matching call was not asked
    assert approver.asked[0].amendment == (("touch", "made_by_agent.txt"),)  # what codex proposed
    written = workspace / ".codex" / "rules" / "default.rules"
    assert 'prefix_rule(pattern=["touch", "made_by_agent.txt"], decision="allow")' in written.read_text()
    load_policy(workspace, RulesSettings(include_user=False))  # it loads (in codex's own: tests/rules/)
    assert (workspace / "made_by_agent.txt").exists()
    assert (workspace / "calc.py").read_text() == CALC
    first = run.calls[0]
    assert first["status"] == "succeeded" and first["approval_source"] == "human"


def test_a_patch_to_the_workspaces_rules_is_asked_and_codex_cannot_write_them(tmp_path: Path) -> None:
    """A rule the agent wrote would decide its next calls: its patch there is asked (here: nobody answers, so
    denied) even though the profile grants edit, and a command writing there fails (read-only inside)."""
    workspace, ref = new_workspace(tmp_path)
    rules = workspace / ".codex" / "rules"
    rules.mkdir(parents=True)
    (rules / "team.rules").write_text('prefix_rule(pattern=["git", "push"], decision="forbidden")\n')
    patch = (
        "*** Begin Patch\n*** Add File: .codex/rules/mine.rules\n"
        '+prefix_rule(pattern=["curl"], decision="allow")\n*** End Patch'
    )
    run, _model = run_agent(
        tmp_path,
        [
            [{"patch": patch}],
            [{"exec": "echo 'prefix_rule(pattern=[\"curl\"])' > .codex/rules/cmd.rules"}],
            [{"message": "could not"}],
        ],
        workspace=(workspace, ref),
        profile=(Capability.READ, Capability.EDIT, Capability.RUN),
    )
    assert run.record.status == "succeeded", run.record.error
    patch_call, command = run.calls
    assert patch_call["status"] == "denied" and patch_call["approval_outcome"] == "ask"
    assert command["status"] == "failed" and command["exit_code"] != 0
    assert sorted(p.name for p in rules.iterdir()) == ["team.rules"]


def test_a_real_turn_is_a_span_under_the_step_and_the_agents_calls_nest_under_it(tmp_path: Path) -> None:
    run, _model = run_agent(tmp_path, [[{"exec": "cat calc.py"}], [{"message": "read it"}]])
    assert run.record.status == "succeeded", run.record.error
    run_dir = Path(run.ref.runs_dir) / run.ref.task_id / "cli" / run.ref.run_id
    spans = [json.loads(line) for line in (run_dir / "traces.jsonl").read_text().splitlines()]
    calls = {s["attributes"].get("codex.tool_call.id"): s for s in spans if s["name"] == "tool_call"}
    (turn,) = [s for s in spans if s["name"] == "agent_turn"]
    assert turn["parent_span_id"] == calls[STEP_CALL_ID]["span_id"]
    assert turn["attributes"]["codex.agent.turn.status"] == "completed"
    assert calls[run.calls[0]["id"]]["parent_span_id"] == turn["span_id"]
    # the events' paths are workspace-relative
    command = next(e for e in run.events if e["type"] == "agent.command")
    assert not str(command.get("cwd", "")).startswith("/")
