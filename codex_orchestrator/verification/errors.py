"""Errors of the verification layer.

OrchestratorError (codex_orchestrator.errors)
└── VerificationError        verification could not look at the workspace
    └── GitError             a git command failed; carries the command, exit code and stderr
"""

from __future__ import annotations

from codex_orchestrator.errors import OrchestratorError


class VerificationError(OrchestratorError):
    """Verification could not look at the workspace."""


class GitError(VerificationError):
    """A read-only git command failed (not a repository, an unknown revision, ...)."""

    def __init__(self, args: tuple[str, ...], exit_code: int | None, stderr: str) -> None:
        self.git_args = args
        self.exit_code = exit_code
        self.stderr = stderr
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {exit_code}"
        super().__init__(f"git {' '.join(args)}: {detail}")

    @property
    def not_a_repository(self) -> bool:
        text = self.stderr.lower()
        # Discovery may also stop at a mount (a sandbox's private /tmp) before it says so.
        return "not a git repository" in text or "stopping at filesystem boundary" in text
