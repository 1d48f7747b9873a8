"""Conservative classification of shell commands into the capabilities they need (``classify_shell``).

A command is read-only safe only when every part is a known read-only command with no dangerous flag, no
output redirection and no construct that hides what runs; anything not understood needs ``run``. A word the
shell may still expand (an unquoted ``{ * ? [ ~ $``) is never taken as a literal option or operand.

Flow at a glance: shell_syntax.Lexer → walk (substitutions, redirections, assignments, keywords) → registry
(the command's handler) → Findings → Classification → call_facts → policy.decide.

    walk.py         classify_shell, call_facts: the walk over a command line
    registry.py     command name → handler
    findings.py     Findings, Classification
    args.py         literal options, operands and the guard against expansions
    assignments.py  which NAME=value assignments are harmless
    readers.py      read-only commands with a few dangerous options (find, sort, uniq, tree, test, ...)
    sed.py, git.py  the two with a language of their own
    git_env.py      the environment that neutralises git's executable config; spawn_env for the gate
    wrappers.py     env, sudo, nice, xargs, exec, eval, sh -c
    others.py       writers, network, package managers, interpreters
"""

from __future__ import annotations

from codex_orchestrator.commands.findings import Classification
from codex_orchestrator.commands.git_env import GIT_NEUTRAL_ENV, spawn_env
from codex_orchestrator.commands.walk import call_facts, classify_shell

# MAX_NESTING is re-exported: the lexer and the classifier share one nesting limit, and callers know it from here.
from codex_orchestrator.shell_syntax import MAX_NESTING as MAX_NESTING

__all__ = ["GIT_NEUTRAL_ENV", "MAX_NESTING", "Classification", "call_facts", "classify_shell", "spawn_env"]
