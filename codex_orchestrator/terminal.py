"""Asking a person at the terminal: render the approval request and read approve / session / remember / deny
(+ reason)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

from codex_orchestrator.approvals import Announce, ApprovalAnswer, ApprovalRequest, Decision

if TYPE_CHECKING:
    from rich.console import Console  # imported when a person is asked, not by every `exec`

_CHOICES = {
    "y": Decision.APPROVE,
    "yes": Decision.APPROVE,
    "a": Decision.APPROVE,
    "approve": Decision.APPROVE,
    "s": Decision.APPROVE_FOR_SESSION,
    "session": Decision.APPROVE_FOR_SESSION,
    "r": Decision.APPROVE_AND_REMEMBER,
    "remember": Decision.APPROVE_AND_REMEMBER,
    "n": Decision.DENY,
    "no": Decision.DENY,
    "d": Decision.DENY,
    "deny": Decision.DENY,
}


def stdin_is_tty() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (ValueError, OSError):
        return False


def prompt_decision(
    request: ApprovalRequest, *, stdin: TextIO | None = None, console: Console | None = None
) -> ApprovalAnswer:
    """Show the request and ask until the answer is one of the choices; EOF counts as a denial."""
    from rich.console import Console
    from rich.markdown import Markdown  # markdown-it's import is ~0.1 s: only when a person is asked

    console = console or Console(stderr=True)
    stdin = stdin or sys.stdin
    console.print(Markdown(request.markdown()))
    while True:
        remember = " · approve and remember (r)" if request.amendment else ""
        console.print(f"[bold]approve[/] (y) · approve for session (s){remember} · deny (n) > ", end="")
        line = stdin.readline()
        if not line:
            return ApprovalAnswer(Decision.DENY, reason="no answer (end of input)", answered_by="terminal")
        choice = _CHOICES.get(line.strip().lower())
        if choice is Decision.APPROVE_AND_REMEMBER and not request.amendment:
            choice = None  # nothing to remember: part of the command is not a plain command
        if choice is None:
            console.print(f"[yellow]please answer y, s{', r' if request.amendment else ''} or n[/]")
            continue
        reason = ""
        if choice is Decision.DENY:
            console.print("reason (optional) > ", end="")
            reason = stdin.readline().strip()
        return ApprovalAnswer(choice, reason=reason or None, answered_by="terminal")


class TerminalApprover:
    """Asks the person at this process's terminal (``exec`` attached to a TTY)."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console

    def ask(self, request: ApprovalRequest, announce: Announce) -> ApprovalAnswer:
        announce(None)
        return prompt_decision(request, console=self._console)


def login_name() -> str | None:
    """The name of the person at this terminal, recorded as an approval's reviewer (None when unknown)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
