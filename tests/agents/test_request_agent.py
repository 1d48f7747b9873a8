"""An agent step's fields are validated like every request field: one clear message naming what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codex_orchestrator.errors import RequestError
from codex_orchestrator.request import parse_request

AGENT = {"name": "implement", "kind": "agent", "agent": "codex", "prompt": "add mul"}


def _parse(tmp_path: Path, step: dict[str, Any], **extra: Any) -> Any:
    return parse_request({"task": "t", "workspace": str(tmp_path), "steps": [step], **extra})


def test_an_agent_step_with_its_codex_configuration(tmp_path: Path) -> None:
    config = {"model": "gpt-5-codex", "model_providers.local.base_url": "http://127.0.0.1:8000/v1", "x.n": 3}
    step = _parse(tmp_path, {**AGENT, "codex_config": config}).steps[0]
    assert step.drives_agent() and step.codex_config == config


def test_the_opaque_command_form_keeps_working(tmp_path: Path) -> None:
    step = _parse(
        tmp_path, {"name": "a", "kind": "agent", "command": "python examples/scripted_agent.py"}
    ).steps[0]
    assert not step.drives_agent() and step.command


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({**AGENT, "prompt": None}, "steps[implement]: an agent step driving codex needs a 'prompt'"),
        ({**AGENT, "prompt": "a\x00b"}, "steps.0.prompt: contains a NUL byte"),
        (
            {**AGENT, "prompt": "x" * (64 * 1024 + 1)},
            "steps.0.prompt: is 65537 bytes; the limit is 65536 bytes",
        ),
        (
            {**AGENT, "command": "codex exec"},
            "has either 'command' (one opaque call) or 'agent' and 'prompt'",
        ),
        ({**AGENT, "agent": "claude"}, "steps[implement].agent: Input should be 'codex' (allowed: codex)"),
        (
            {**AGENT, "codex_config": {"approval_policy": "never"}},
            "codex_config may not set 'approval_policy'",
        ),
        (
            {**AGENT, "codex_config": {"sandbox_workspace_write.network_access": True}},
            "codex_config may not set 'sandbox_workspace_write.network_access'",
        ),
        ({**AGENT, "codex_config": {"bad key": "x"}}, "codex_config key 'bad key' is not a codex config key"),
        ({**AGENT, "codex_config": {"model": ["a"]}}, "steps[implement].codex_config.model"),
        ({"name": "a", "kind": "shell", "command": "ls", "prompt": "p"}, "'prompt', 'codex_config' and"),
    ],
)
def test_bad_agent_fields_are_named(tmp_path: Path, step: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError) as caught:
        _parse(tmp_path, step)
    assert message in str(caught.value)


def test_an_agent_step_on_an_ssh_instance_is_refused(tmp_path: Path) -> None:
    instances = [{"name": "local"}, {"name": "far", "ssh": {"host": "far.example"}, "labels": ["gpu"]}]
    with pytest.raises(RequestError) as caught:
        _parse(tmp_path, {**AGENT, "labels": ["gpu"]}, instances=instances)
    assert (
        "step 'implement': agent codex runs on this machine only, not over SSH; pin it with instance: local"
        in (str(caught.value))
    )
    assert _parse(tmp_path, {**AGENT, "instance": "local"}, instances=instances).steps[0].instance == "local"
