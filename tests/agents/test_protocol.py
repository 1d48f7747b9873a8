"""The committed app-server schema is the installed codex's, and what the driver reads and answers fits it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from codex_orchestrator.agents import protocol
from codex_orchestrator.agents.app_server import check_protocol, pinned_codex
from tests.conftest import ROOT

SCHEMA_DIR = ROOT / "schemas" / "codex-app-server"


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text())  # type: ignore[no-any-return]


def test_the_committed_schema_is_the_installed_binarys(tmp_path: Path) -> None:
    subprocess.run(
        [str(pinned_codex()), "app-server", "generate-json-schema", "--out", str(tmp_path)],
        check=True,
        timeout=60,
    )
    committed = sorted(p.name for p in SCHEMA_DIR.glob("*.json"))
    generated = sorted(p.name for p in tmp_path.glob("*.json"))
    assert committed == generated, "schema files differ: run `make codex-schema`"
    stale = [n for n in committed if (SCHEMA_DIR / n).read_bytes() != (tmp_path / n).read_bytes()]
    assert not stale, f"stale against the installed codex: {stale}; run `make codex-schema`"


def test_the_pinned_binary_has_what_the_driver_needs(tmp_path: Path) -> None:
    check_protocol(pinned_codex(), tmp_path)  # raises AgentIncompatible otherwise


@pytest.mark.parametrize(
    ("model", "name"),
    [
        (protocol.CommandApprovalParams, "CommandExecutionRequestApprovalParams"),
        (protocol.FileChangeApprovalParams, "FileChangeRequestApprovalParams"),
        (protocol.PermissionsApprovalParams, "PermissionsRequestApprovalParams"),
    ],
)
def test_request_models_name_the_schemas_fields(model: Any, name: str) -> None:
    schema = _schema(name)
    aliases = {f.alias or n for n, f in model.model_fields.items()}
    assert aliases <= set(schema["properties"]), aliases - set(schema["properties"])
    required = {f.alias or n for n, f in model.model_fields.items() if f.is_required()}
    assert required <= set(schema.get("required", []))


PERMISSIONS = {"network": {"enabled": True}}


@pytest.mark.parametrize(
    ("method", "response", "params"),
    [
        (protocol.COMMAND_APPROVAL, "CommandExecutionRequestApprovalResponse", {}),
        (protocol.FILE_CHANGE_APPROVAL, "FileChangeRequestApprovalResponse", {}),
        (protocol.PERMISSIONS_APPROVAL, "PermissionsRequestApprovalResponse", {"permissions": PERMISSIONS}),
        (protocol.MCP_ELICITATION, "McpServerElicitationRequestResponse", {}),
        (protocol.USER_INPUT, "ToolRequestUserInputResponse", {}),
    ],
)
@pytest.mark.parametrize("decision", ["accept", "acceptForSession", "decline", "cancel"])
def test_every_answer_fits_the_schema(
    method: str, response: str, params: dict[str, Any], decision: Any
) -> None:
    jsonschema.validate(protocol.decision_answer(method, decision, params), _schema(response))


def test_every_method_the_driver_uses_is_in_the_schema() -> None:
    client = {o["properties"]["method"]["enum"][0] for o in _schema("ClientRequest")["oneOf"]}
    server = {o["properties"]["method"]["enum"][0] for o in _schema("ServerRequest")["oneOf"]}
    assert set(protocol.REQUIRED_CLIENT_METHODS) <= client
    assert {*protocol.GATED_METHODS, protocol.MCP_ELICITATION, protocol.USER_INPUT} <= server
