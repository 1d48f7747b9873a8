"""Request files: valid ones load; every bad one gets one message naming the field and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from codex_orchestrator.errors import RequestError
from codex_orchestrator.request import GATE_ENV_VAR, load_request, parse_request


def _write(tmp_path: Path, data: object, name: str = "request.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if name.endswith(".yaml") else __import__("json").dumps(data))
    return path


def _base(workspace: Path) -> dict[str, object]:
    return {"task": "t1", "workspace": str(workspace), "steps": [{"name": "s", "command": "ls"}]}


def test_yaml_and_json_load_with_defaults(tmp_path: Path, workspace: Path) -> None:
    for name in ("r.yaml", "r.json"):
        request = load_request(_write(tmp_path, _base(workspace), name))
        assert request.task == "t1"
        assert request.approval_policy.value == "on-request"
        assert [c.value for c in request.profile] == ["read"]
        assert request.steps[0].kind.value == "shell"


def test_relative_workspace_resolves_against_the_request_file(tmp_path: Path, workspace: Path) -> None:
    data = _base(workspace)
    data["workspace"] = workspace.name
    request = load_request(_write(tmp_path, data))
    assert Path(request.workspace) == workspace.resolve()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"approval_policy": "sometimes"}, "approval_policy"),
        ({"profile": ["read", "root"]}, "profile[1]"),
        ({"task": "../../etc"}, "task"),
        ({"task": "UPPER"}, "task"),
        ({"sandbox": "docker"}, "sandbox"),
        ({"steps": []}, "steps"),
        ({"steps": [{"name": "s"}]}, "needs 'command'"),
        ({"steps": [{"name": "s", "command": "ls", "cwd": "../x"}]}, "inside the workspace"),
        (
            {"steps": [{"name": "s", "kind": "edit", "path": "/etc/passwd", "content": "x"}]},
            "inside the workspace",
        ),
        ({"steps": [{"name": "s", "command": "ls"}, {"name": "s", "command": "ls"}]}, "used twice"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_fields_are_named(
    tmp_path: Path, workspace: Path, change: dict[str, object], needle: str
) -> None:
    data = {**_base(workspace), **change}
    with pytest.raises(RequestError) as info:
        load_request(_write(tmp_path, data))
    assert needle in str(info.value)


def test_unknown_policy_lists_the_allowed_values(tmp_path: Path, workspace: Path) -> None:
    with pytest.raises(RequestError) as info:
        load_request(_write(tmp_path, {**_base(workspace), "approval_policy": "sometimes"}))
    message = str(info.value)
    for allowed in ("untrusted", "on-failure", "on-request", "never"):
        assert allowed in message


def test_missing_workspace(tmp_path: Path) -> None:
    with pytest.raises(RequestError, match="workspace"):
        parse_request(
            {"task": "t", "workspace": str(tmp_path / "nope"), "steps": [{"name": "s", "command": "ls"}]}
        )


def test_malformed_files(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("task: [unclosed\n")
    with pytest.raises(RequestError, match="not valid YAML"):
        load_request(bad_yaml)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    with pytest.raises(RequestError, match="not valid JSON"):
        load_request(bad_json)
    with pytest.raises(RequestError, match="cannot read"):
        load_request(tmp_path / "missing.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n")
    with pytest.raises(RequestError, match="mapping"):
        load_request(listy)


def test_gate_feature_flag_from_environment(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request = parse_request(_base(workspace))
    assert request.gate_enabled()
    monkeypatch.setenv(GATE_ENV_VAR, "off")
    assert not request.gate_enabled()
    assert not parse_request({**_base(workspace), "gate": False}).gate_enabled()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            {"steps": [{"name": "build", "comand": "make"}]},
            "steps[build].comand: unknown field (did you mean 'command'?)",
        ),
        ({"stesp": []}, "stesp: unknown field (did you mean 'steps'?)"),
        ({"approval_policy": "on-reqest"}, "(did you mean 'on-request'?)"),
        (
            {
                "steps": [
                    {"name": "a", "command": "x"},
                    {"name": "lint", "command": "y", "retry": {"max_atempts": 2}},
                ]
            },
            "steps[lint].retry.max_atempts: unknown field (did you mean 'max_attempts'?)",
        ),
        ({"steps": [{"name": "build", "kind": "shell"}]}, "steps[build]: a shell step needs 'command'"),
        ({"steps": [{"command": "make"}]}, "steps[0].name: Field required"),
    ],
)
def test_validation_names_the_step_and_suggests_the_field(
    workspace: Path, change: dict[str, object], needle: str
) -> None:
    with pytest.raises(RequestError) as raised:
        parse_request({**_base(workspace), **change})
    assert needle in str(raised.value)
    assert "steps.0" not in str(raised.value)
