"""The request's ``verification`` section: spec-guard rules and paths, version probes, the review gate.

Defaults are chosen so that a request without the section behaves as before: spec-guard runs and reports but
is advisory, and no review is asked (``review.policy: off``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SpecRule = Literal["spec-not-updated", "stale-review"]
ReviewPolicy = Literal["required", "optional", "off"]

DEFAULT_SPEC_PATHS = ["**/*.md", "**/*.rst", "docs/**", "specs/**"]
DEFAULT_MAX_REVIEW_AGE_DAYS = 90
# Names the verification milestone gives its own calls and results; a guardrail may not take them.
RESERVED_NAMES = frozenset({"spec-guard", "review-command", "reviewer"})


class SpecGuardSettings(BaseModel):
    """spec-guard: code changes come with a spec/task document change; reviewed specs stay fresh."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="run spec-guard in the verification milestone")
    required: bool = Field(
        default=False, description="a finding fails the run (true) or is only reported (false)"
    )
    rules: list[SpecRule] = Field(
        default=["spec-not-updated", "stale-review"], description="spec-not-updated, stale-review"
    )
    spec_paths: list[str] = Field(
        default=list(DEFAULT_SPEC_PATHS),
        description="globs of spec/task documents (a pattern without '/' matches the file name at any depth)",
    )
    code_paths: list[str] = Field(default=["**"], description="globs of what counts as code (minus specs)")
    ignore_paths: list[str] = Field(default=[".runs/**"], description="globs that are neither")
    max_review_age_days: int = Field(
        default=DEFAULT_MAX_REVIEW_AGE_DAYS, ge=0, le=36_500, description="stale-review: N days"
    )


class DiagnosticsSettings(BaseModel):
    """Environment facts recorded at the start of verification."""

    model_config = ConfigDict(extra="forbid")

    versions: dict[str, list[str]] = Field(
        default={},
        description="extra version probes, name -> argv (e.g. codex: [codex, --version]); run read-only "
        "sandboxed with a short timeout, first line recorded",
    )
    agent_version: bool = Field(
        default=True, description="also probe each agent step's program with `--version`"
    )


class ReviewSettings(BaseModel):
    """The review before hand-off: who decides, and what they are shown."""

    model_config = ConfigDict(extra="forbid")

    policy: ReviewPolicy = Field(
        default="off",
        description="required: an approval is needed (skip not allowed); optional: asked, skip allowed; "
        "off: not asked",
    )
    command: str | list[str] | None = Field(
        default=None,
        description="run through the gate and shown to the reviewer, e.g. `codex review --uncommitted`",
    )
    reviewer: str | list[str] | None = Field(
        default=None,
        description="an auto-reviewer command, run through the gate: reads the review (JSON) from the file "
        "$CODEX_REVIEW_FILE names and prints its verdict as JSON; recorded with source `reviewer`",
    )
    timeout_s: int | None = Field(
        default=None, ge=1, le=7 * 86_400, description="unanswered review (default: approval_timeout_s)"
    )


class VerificationSettings(BaseModel):
    """The ``verification`` section of a request."""

    model_config = ConfigDict(extra="forbid")

    spec_guard: SpecGuardSettings = Field(default=SpecGuardSettings())
    diagnostics: DiagnosticsSettings = Field(default=DiagnosticsSettings())
    review: ReviewSettings = Field(default=ReviewSettings())
