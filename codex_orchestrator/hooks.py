"""Lifecycle hooks around each tool call: ``pre_tool_call`` and ``post_tool_call`` commands (as in Claude Code
and codex), run in the process that runs the call, with a JSON payload on stdin.

Exit codes decide (``decide`` is pure):
- 0: allow. Stdout may be JSON — ``{"decision": "deny", "reason": ...}`` denies after all, ``"context"`` (or
  ``"additionalContext"``) adds context — or plain text, which is context. A pre hook's context reaches the
  command as ``CODEX_ORCHESTRATOR_HOOK_CONTEXT``.
- 2: deny (pre: the call does not run, recorded ``denied`` with approval source ``hook``) or block (post: the
  call already ran; the objection is recorded). The reason is the JSON ``reason``, else stderr.
- anything else, a timeout or a hook that cannot start: an error, recorded; the call goes on.
Every decision lands in the call's ``hooks`` in the manifest.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from codex_orchestrator.records.manifest import HookRecord

HOOK_CONTEXT_ENV = "CODEX_ORCHESTRATOR_HOOK_CONTEXT"
DEFAULT_HOOK_TIMEOUT_S = 60.0
EXIT_DENY = 2  # Claude Code's "blocking error"
MAX_HOOK_TEXT_BYTES = 8 * 1024  # of a reason or context kept in the records
HookName = Literal["pre_tool_call", "post_tool_call"]
Decision = Literal["allow", "deny", "block", "error"]


class HookSettings(BaseModel):
    """The request's ``hooks`` section: a command (argv list or shell line) per lifecycle point."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pre_tool_call: list[str] | str | None = Field(
        default=None, description="runs before each call (before its approval): exit 2 denies it"
    )
    post_tool_call: list[str] | str | None = Field(
        default=None, description="runs after each call, with its record on stdin"
    )
    timeout_s: float = Field(default=DEFAULT_HOOK_TIMEOUT_S, gt=0, le=3600)

    def command(self, hook: HookName) -> list[str] | None:
        value = self.pre_tool_call if hook == "pre_tool_call" else self.post_tool_call
        if value is None or value == "" or value == []:
            return None
        return ["/bin/sh", "-c", value] if isinstance(value, str) else list(value)


def run_hook(
    settings: HookSettings, hook: HookName, payload: Mapping[str, Any], *, cwd: Path
) -> HookRecord | None:
    """Run one hook (None when none is configured) and return its decision."""
    argv = settings.command(hook)
    if argv is None:
        return None
    data = json.dumps({"hook_event_name": hook, **payload}, ensure_ascii=False).encode("utf-8")
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv, input=data, capture_output=True, cwd=cwd, timeout=settings.timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return _record(hook, "error", f"no exit within {settings.timeout_s} s (killed)", None, None, started)
    except OSError as exc:
        return _record(hook, "error", f"cannot run the hook: {exc.strerror or exc}", None, None, started)
    decision, reason, context = decide(hook, done.returncode, _text(done.stdout), _text(done.stderr))
    return _record(hook, decision, reason, context, done.returncode, started)


def decide(
    hook: HookName, exit_code: int, stdout: str, stderr: str
) -> tuple[Decision, str | None, str | None]:
    """(decision, reason, context) from a hook's exit code and output."""
    answer = _json_object(stdout)
    refused: Decision = "deny" if hook == "pre_tool_call" else "block"
    if exit_code == EXIT_DENY:
        reason = _str(answer.get("reason")) if answer else None
        return refused, reason or stderr.strip() or "refused by the hook", None
    if exit_code != 0:
        detail = stderr.strip()[-500:]
        return "error", f"exit code {exit_code}" + (f": {detail}" if detail else ""), None
    if answer is None:
        return "allow", None, stdout.strip() or None
    context = _str(answer.get("context")) or _str(answer.get("additionalContext"))
    if str(answer.get("decision", "")).lower() in ("deny", "block"):
        return refused, _str(answer.get("reason")) or "refused by the hook", context
    return "allow", _str(answer.get("reason")), context


def _record(
    hook: HookName,
    decision: Decision,
    reason: str | None,
    context: str | None,
    exit_code: int | None,
    started: float,
) -> HookRecord:
    return HookRecord(
        hook=hook,
        decision=decision,
        reason=_cap(reason),
        context=_cap(context),
        exit_code=exit_code,
        duration_ms=round((time.monotonic() - started) * 1000, 3),
    )


def _json_object(text: str) -> dict[str, Any] | None:
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _cap(text: str | None) -> str | None:
    if text is None:
        return None
    data = text.encode("utf-8")
    return text if len(data) <= MAX_HOOK_TEXT_BYTES else data[:MAX_HOOK_TEXT_BYTES].decode("utf-8", "ignore")
