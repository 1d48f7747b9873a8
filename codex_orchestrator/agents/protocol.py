"""The part of codex's app-server protocol the gate answers: its approval requests and our answers to them.

The SDK (``openai_codex.generated.v2_all``) models the client's requests and the notifications, not the requests
the server sends the client; these models cover those, field for field as in the committed schema
(schemas/codex-app-server/, checked by tests/agents/test_protocol.py). Unknown fields are kept, not refused: a
newer codex may add some, and the gate decides on the ones it knows.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

COMMAND_APPROVAL = "item/commandExecution/requestApproval"
FILE_CHANGE_APPROVAL = "item/fileChange/requestApproval"
PERMISSIONS_APPROVAL = "item/permissions/requestApproval"
MCP_ELICITATION = "mcpServer/elicitation/request"
USER_INPUT = "item/tool/requestUserInput"
# The server requests the gate answers with a decision; any other is refused (fail closed).
GATED_METHODS = (COMMAND_APPROVAL, FILE_CHANGE_APPROVAL, PERMISSIONS_APPROVAL)
# What the driver needs of a codex binary: these client methods and server requests (checked at start-up
# against the binary's own schema when a request names another binary).
REQUIRED_CLIENT_METHODS = ("initialize", "thread/start", "thread/resume", "turn/start", "turn/interrupt")
REQUIRED_SERVER_REQUESTS = (COMMAND_APPROVAL, FILE_CHANGE_APPROVAL)

# acceptWithExecpolicyAmendment: accept, and codex adds the rule it proposed (approve-and-remember).
Decision = Literal["accept", "acceptForSession", "acceptWithExecpolicyAmendment", "decline", "cancel"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    thread_id: str = Field(alias="threadId")
    turn_id: str = Field(alias="turnId")
    item_id: str = Field(alias="itemId")


class CommandApprovalParams(_Params):
    """``item/commandExecution/requestApproval``: a command codex wants to run (``command`` as codex will run
    it, usually ``/bin/bash -lc '...'``), where, and why (``reason``: e.g. it asked to leave its sandbox)."""

    command: str | None = None
    cwd: str | None = None
    reason: str | None = None
    command_actions: list[dict[str, Any]] | None = Field(default=None, alias="commandActions")
    network_approval_context: dict[str, Any] | None = Field(default=None, alias="networkApprovalContext")
    proposed_execpolicy_amendment: list[str] | None = Field(default=None, alias="proposedExecpolicyAmendment")


class FileChangeApprovalParams(_Params):
    """``item/fileChange/requestApproval``: the patch itself is the ``fileChange`` item started just before."""

    reason: str | None = None
    grant_root: str | None = Field(default=None, alias="grantRoot")


class PermissionsApprovalParams(_Params):
    """``item/permissions/requestApproval``: codex asks for more than its sandbox gives (network, paths)."""

    cwd: str
    reason: str | None = None
    permissions: dict[str, Any] = Field(default_factory=dict)


def decision_answer(method: str, decision: Decision, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-RPC result for ``method`` carrying ``decision`` (validated against the schema in the tests)."""
    if decision == "acceptWithExecpolicyAmendment":
        proposed = (params or {}).get("proposedExecpolicyAmendment")
        if method != COMMAND_APPROVAL or not proposed:
            decision = "accept"  # nothing codex could add: a plain accept (our own rule is written anyway)
        else:
            amendment = {"execpolicy_amendment": [str(word) for word in proposed]}
            return {"decision": {"acceptWithExecpolicyAmendment": amendment}}
    if method == PERMISSIONS_APPROVAL:
        granted = decision in ("accept", "acceptForSession")
        requested = (params or {}).get("permissions") or {}
        answer: dict[str, Any] = {"permissions": _granted_profile(requested) if granted else {}}
        answer["scope"] = "session" if decision == "acceptForSession" else "turn"
        return answer
    if method == MCP_ELICITATION:
        return {
            "action": "decline" if decision == "decline" else ("accept" if decision == "accept" else "cancel")
        }
    if method == USER_INPUT:
        return {"answers": {}}
    return {"decision": decision}


def _granted_profile(requested: dict[str, Any]) -> dict[str, Any]:
    """A requested permission profile, granted as asked (only the keys a grant may carry)."""
    return {key: value for key, value in requested.items() if key in ("network", "fileSystem") and value}
