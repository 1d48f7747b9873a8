"""Exec-policy rules as data, and codex's matching over them: prefix rules keyed by program, alternatives,
``host_executable`` path gates, strictest decision wins (codex-rs/execpolicy policy.rs and rule.rs).

Pure: no I/O. ``Policy.check(argv)`` is what ``codex execpolicy check`` computes for one command.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RuleDecision(StrEnum):
    """A rule's decision; ordered: the strictest matching one wins."""

    ALLOW = "allow"
    PROMPT = "prompt"
    FORBIDDEN = "forbidden"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {RuleDecision.ALLOW: 0, RuleDecision.PROMPT: 1, RuleDecision.FORBIDDEN: 2}


def strictest(decisions: Iterable[RuleDecision]) -> RuleDecision | None:
    return max(decisions, key=lambda d: d.rank, default=None)


@dataclass(frozen=True)
class PrefixRule:
    """One ``prefix_rule`` for one first token (a rule whose first element has alternatives is one per head,
    as codex stores it). ``rest`` holds each later element's alternatives."""

    program: str
    rest: tuple[tuple[str, ...], ...]
    decision: RuleDecision
    justification: str | None = None
    source: str = ""  # the rules file, as records name it
    line: int = 0  # the line of the prefix_rule call (0: unknown)

    def matches_prefix(self, argv: Sequence[str]) -> tuple[str, ...] | None:
        """The matched prefix of ``argv`` (the command's own tokens), or None."""
        n = len(self.rest) + 1
        if len(argv) < n or argv[0] != self.program:
            return None
        for alternatives, token in zip(self.rest, argv[1:n], strict=True):
            if token not in alternatives:
                return None
        return tuple(argv[:n])

    def pattern_text(self) -> str:
        """The pattern as written in a rules file: ``["npm", ["install", "ci"]]``."""
        parts = [_quote(self.program)]
        for alts in self.rest:
            parts.append(_quote(alts[0]) if len(alts) == 1 else "[" + ", ".join(map(_quote, alts)) + "]")
        return "[" + ", ".join(parts) + "]"


def _quote(text: str) -> str:
    """A Starlark string literal (JSON's escapes are valid Starlark)."""
    import json

    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True)
class RuleMatch:
    """One matching rule, in codex's ``prefixRuleMatch`` shape (``as_json``)."""

    rule: PrefixRule
    matched_prefix: tuple[str, ...]
    resolved_program: str | None = None

    @property
    def decision(self) -> RuleDecision:
        return self.rule.decision

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"matchedPrefix": list(self.matched_prefix), "decision": self.decision.value}
        if self.resolved_program is not None:
            body["resolvedProgram"] = self.resolved_program
        if self.rule.justification is not None:
            body["justification"] = self.rule.justification
        return {"prefixRuleMatch": body}


@dataclass(frozen=True)
class Evaluation:
    """The matches for one command and the strictest decision (None: no rule matched)."""

    argv: tuple[str, ...]
    matches: tuple[RuleMatch, ...]

    @property
    def decision(self) -> RuleDecision | None:
        return strictest(m.decision for m in self.matches)

    @property
    def deciding(self) -> RuleMatch | None:
        """The first match with the winning decision: the rule a record names."""
        decision = self.decision
        return next((m for m in self.matches if m.decision is decision), None)

    def as_json(self) -> dict[str, Any]:
        """Exactly ``codex execpolicy check``'s output."""
        out: dict[str, Any] = {"matchedRules": [m.as_json() for m in self.matches]}
        if self.decision is not None:
            out["decision"] = self.decision.value
        return out


@dataclass(frozen=True)
class NetworkRule:
    """A ``network_rule``: loaded and checked as codex does; commands are not matched against it."""

    host: str
    protocol: str
    decision: RuleDecision
    justification: str | None = None


@dataclass
class Policy:
    """Every rule of the loaded files, by program, in the order they were defined."""

    rules_by_program: dict[str, list[PrefixRule]] = field(default_factory=dict)
    host_executables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    network_rules: list[NetworkRule] = field(default_factory=list)

    def add(self, rule: PrefixRule) -> None:
        self.rules_by_program.setdefault(rule.program, []).append(rule)

    @property
    def rules(self) -> list[PrefixRule]:
        return [r for rules in self.rules_by_program.values() for r in rules]

    def check(
        self, argv: Sequence[str], *, resolve_host_executables: bool = False, cwd: str | None = None
    ) -> Evaluation:
        """The rules matching ``argv``: exact first-token rules; when none match and ``resolve_host_executables``
        is set, rules for the program path's basename, gated by ``host_executable`` paths. A relative program
        path is taken from ``cwd`` (default: this process's), as codex does."""
        cmd = tuple(argv)
        found = self._exact(cmd)
        if not found and resolve_host_executables:
            found = self._by_basename(cmd, cwd if cwd is not None else os.getcwd())
        return Evaluation(cmd, tuple(found))

    def _exact(self, cmd: tuple[str, ...]) -> list[RuleMatch]:
        if not cmd:
            return []
        out = []
        for rule in self.rules_by_program.get(cmd[0], ()):
            prefix = rule.matches_prefix(cmd)
            if prefix is not None:
                out.append(RuleMatch(rule, prefix))
        return out

    def _by_basename(self, cmd: tuple[str, ...], cwd: str) -> list[RuleMatch]:
        if not cmd:
            return []
        program = absolute_path(posixpath.join(cwd, cmd[0]))
        basename = path_basename(cmd[0])
        if program is None or basename is None:
            return []
        rules = self.rules_by_program.get(basename)
        if not rules:
            return []
        allowed = self.host_executables.get(basename)
        if allowed is not None and program not in allowed:
            return []
        renamed = (basename, *cmd[1:])
        out = []
        for rule in rules:
            prefix = rule.matches_prefix(renamed)
            if prefix is not None:
                out.append(RuleMatch(rule, prefix, resolved_program=program))
        return out


def path_basename(path: str) -> str | None:
    """Rust's ``Path::file_name``: the last normal component (a trailing ``/`` or ``/.`` is ignored); None for
    a path ending in ``..`` or the root."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or parts[-1] == "..":
        return None
    # Rust keeps a leading "." component only at the start (`./x`), which has been dropped with the rest.
    return parts[-1]


def absolute_path(path: str) -> str | None:
    """codex's ``AbsolutePathBuf``: an absolute path with ``.`` and ``..`` resolved lexically; None otherwise."""
    if not path.startswith("/"):
        return None
    normal = posixpath.normpath(path)
    if normal.startswith("//"):
        normal = "/" + normal.lstrip("/")
    return normal
