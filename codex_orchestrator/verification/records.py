"""The manifest's verification sections: ``diagnostics``, ``spec_guard``, ``guardrails``, ``review``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GuardrailOutcome = Literal["passed", "failed", "skipped", "error"]
Verdict = Literal["approved", "changes-requested", "skipped"]
VerdictSource = Literal["human", "reviewer", "policy"]


class _Model(BaseModel):
    # Built when first used (nested in the manifest, or by the verification milestone), not at import.
    model_config = ConfigDict(extra="forbid", defer_build=True)


class ChangedFile(_Model):
    path: str = Field(description="workspace-relative")
    insertions: int | None = Field(default=None, description="None for a binary file")
    deletions: int | None = None
    by: Literal["edit", "command"] = Field(description="written by an edit step, or changed by commands")


class DiagnosticsRecord(_Model):
    """What changed in the workspace during the run, and the tools it ran with."""

    base_commit: str | None = Field(default=None, description="HEAD when the run began (foundation)")
    head_commit: str | None = Field(default=None, description="HEAD when verification began")
    files_changed: int = 0
    insertions: int = 0
    deletions: int = 0
    files: list[ChangedFile] = Field(default_factory=list)
    edited_files: list[str] = Field(default_factory=list, description="written by edit steps")
    command_files: list[str] = Field(default_factory=list, description="changed, but by no edit step")
    tools: dict[str, str] = Field(default_factory=dict, description="tool -> version (first line)")
    error: str | None = Field(default=None, description="why the change could not be measured")
    recorded_at: str | None = None


class SpecFinding(_Model):
    rule: Literal["spec-not-updated", "stale-review"]
    file: str = Field(description="workspace-relative")
    message: str


class SpecGuardRecord(_Model):
    status: GuardrailOutcome
    base: str | None = Field(default=None, description="the revision the change is measured from")
    required: bool = False
    code_files: list[str] = Field(default_factory=list, description="changed code files")
    spec_files: list[str] = Field(default_factory=list, description="changed spec/task documents")
    findings: list[SpecFinding] = Field(default_factory=list)
    detail: str | None = None


class GuardrailRecord(_Model):
    name: str
    result: GuardrailOutcome
    required: bool = True
    call_id: str | None = Field(default=None, description="the tool call that ran it (None: in-process)")
    exit_code: int | None = None
    detail: str | None = Field(default=None, description="why it failed, errored or was skipped")


class ReviewRecord(_Model):
    policy: Literal["required", "optional", "off"] = "off"
    status: Literal["pending", "answered"] = "pending"
    verdict: Verdict | None = None
    source: VerdictSource | None = None
    by: str | None = Field(
        default=None, description="who answered: a reviewer's name or the reviewer command"
    )
    answered_by: str | None = Field(
        default=None, description="the channel: prefect-ui, cli, terminal, sdk, reviewer, timeout, policy"
    )
    comments: str | None = None
    requested_at: str | None = None
    answered_at: str | None = None
    flow_run_id: str | None = Field(default=None, description="the paused Prefect flow run of the review")
    command_call_id: str | None = Field(default=None, description="the review command's tool call")
    command_output: str | None = Field(default=None, description="its output (tail, redacted)")
    reviewer_call_id: str | None = Field(default=None, description="the reviewer command's tool call")
