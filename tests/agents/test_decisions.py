"""agents/decisions.py: codex's approval requests classified and decided like a step's command (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_orchestrator.agents.decisions import agent_call, agent_call_id, inner_command, requirement
from codex_orchestrator.agents.protocol import COMMAND_APPROVAL, FILE_CHANGE_APPROVAL, PERMISSIONS_APPROVAL
from codex_orchestrator.policy import ApprovalPolicy, Capability, Outcome

WS = Path("/work/space")
IDS = {"threadId": "t1", "turnId": "u1", "itemId": "call_0_0"}
READ_RUN = frozenset({Capability.READ, Capability.RUN})


def _command(command: str, cwd: str = str(WS), **extra: object) -> dict[str, object]:
    return {**IDS, "command": command, "cwd": cwd, **extra}


def _decide(method: str, params: dict[str, object], profile: frozenset[Capability] = READ_RUN, **kw: object):  # type: ignore[no-untyped-def]
    call = agent_call(method, params, step_call_id="exec.s", workspace=WS, **kw)  # type: ignore[arg-type]
    return call, requirement(
        call, policy=ApprovalPolicy.ON_REQUEST, profile=profile, workspace=WS, network_available=False
    )


@pytest.mark.parametrize(
    ("wrapped", "inner"),
    [
        ("/bin/bash -lc 'cat calc.py'", "cat calc.py"),
        ("/bin/bash -lc ls", "ls"),
        ("bash -c 'echo \"a b\"'", 'echo "a b"'),
        ("ls -la", "ls -la"),
        ("unbalanced 'quote", "unbalanced 'quote"),
    ],
)
def test_the_script_codex_wraps_in_a_login_shell_is_what_is_classified(wrapped: str, inner: str) -> None:
    assert inner_command(wrapped) == inner


def test_ids_are_deterministic_per_thread_turn_and_item() -> None:
    one = agent_call_id("exec.s", "t1", "u1", "call_0_0")
    assert one == agent_call_id("exec.s", "t1", "u1", "call_0_0")
    assert one != agent_call_id("exec.s", "t1", "u2", "call_0_0")
    assert one.startswith("exec.s.call-0-0-")


def test_a_read_runs_and_a_write_without_edit_is_asked() -> None:
    call, needed = _decide(COMMAND_APPROVAL, _command("/bin/bash -lc 'cat calc.py'"))
    assert call.display == "cat calc.py" and needed.outcome is Outcome.SKIP
    _call, needed = _decide(COMMAND_APPROVAL, _command("/bin/bash -lc 'echo x > notes.md'"))
    assert needed.outcome is Outcome.ASK and Capability.EDIT in needed.missing


def test_network_is_refused_when_the_agents_sandbox_has_none() -> None:
    _call, needed = _decide(COMMAND_APPROVAL, _command("/bin/bash -lc 'curl -s https://example.org'"))
    assert needed.outcome is Outcome.FORBID and "needs network" in needed.reason


def test_a_cwd_outside_the_workspace_is_refused() -> None:
    _call, needed = _decide(COMMAND_APPROVAL, _command("/bin/bash -lc ls", cwd="/etc"))
    assert needed.outcome is Outcome.FORBID and needed.reason == "/etc is outside the workspace"


def test_codex_asking_to_leave_its_sandbox_is_an_escalation() -> None:
    _call, needed = _decide(COMMAND_APPROVAL, _command("/bin/bash -lc ls", reason="needs more access"))
    assert needed.outcome is Outcome.ASK and needed.reason == "the call asks for approval"


def test_a_patch_needs_edit_and_shows_its_diff() -> None:
    item = {"changes": [{"path": str(WS / "calc.py"), "diff": "@@ -1 +1 @@\n-a\n+b\n"}]}
    call, needed = _decide(FILE_CHANGE_APPROVAL, dict(IDS), file_change=item)
    assert call.display == "apply patch: calc.py" and "+b" in call.diff
    assert needed.outcome is Outcome.ASK and needed.missing == {Capability.EDIT}
    outside = {"changes": [{"path": "/work/other/x.py", "diff": ""}]}
    _call, needed = _decide(
        FILE_CHANGE_APPROVAL, dict(IDS), profile=READ_RUN | {Capability.EDIT}, file_change=outside
    )
    assert needed.outcome is Outcome.FORBID and "outside the workspace" in needed.reason


def test_a_permission_request_for_network_needs_network() -> None:
    params = {**IDS, "cwd": str(WS), "permissions": {"network": {"enabled": True}}, "reason": "pip install"}
    call, needed = _decide(PERMISSIONS_APPROVAL, params)
    assert call.display == "permissions: network (pip install)"
    assert needed.outcome is Outcome.FORBID and "needs network" in needed.reason
    net = agent_call(PERMISSIONS_APPROVAL, params, step_call_id="exec.s", workspace=WS)
    asked = requirement(
        net, policy=ApprovalPolicy.ON_REQUEST, profile=READ_RUN, workspace=WS, network_available=True
    )
    assert asked.outcome is Outcome.ASK and asked.missing == {Capability.NETWORK}
