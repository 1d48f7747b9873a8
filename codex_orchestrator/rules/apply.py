"""The seam between the gate and the rules: load a run's rules for a call, turn the verdict into a record, and
remember an approved call as a rule. The gate (gate.py) calls these; they hold no state of their own."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from codex_orchestrator.policy import CallFacts
from codex_orchestrator.records.manifest import RuleRecord, RulesFileRecord
from codex_orchestrator.rules.amend import append_allow_rule
from codex_orchestrator.rules.loader import RulesError, RulesSource
from codex_orchestrator.rules.sources import RulesSettings, load_policy, record_name, remember_path
from codex_orchestrator.rules.verdict import NO_VERDICT, RuleVerdict, evaluate


def verdict_for(
    settings: RulesSettings | None, workspace: Path | None, facts: CallFacts, cwd: Path
) -> RuleVerdict:
    """What the run's rules say about a call (``RulesError`` when a file no longer loads)."""
    if settings is None or workspace is None or not facts.parts:
        return NO_VERDICT
    policy, _ = load_policy(workspace, settings)
    return evaluate(policy, facts.parts, facts.opaque, str(cwd))


def rule_record(verdict: RuleVerdict) -> RuleRecord | None:
    if verdict.match is None or verdict.decision is None:
        return None
    rule = verdict.match.rule
    return RuleRecord(
        file=rule.source,
        pattern=rule.pattern_text(),
        decision=verdict.decision.value,
        justification=rule.justification,
        matched_prefix=list(verdict.match.matched_prefix),
    )


def amendment_for(facts: CallFacts) -> tuple[tuple[str, ...], ...]:
    """The prefixes that would let this call run unasked: each command it runs (wrappers need none), up to its
    first word the shell may still expand. None when something runs that is no command part."""
    if facts.opaque or not facts.parts:
        return ()
    out: list[tuple[str, ...]] = []
    for part in facts.parts:
        if part.wrapper:
            continue
        n = next((i for i, literal in enumerate(part.literal) if not literal), len(part.argv))
        prefix = part.argv[:n]
        if prefix and prefix not in out:
            out.append(prefix)
    return tuple(out)


def remember(
    workspace: Path, settings: RulesSettings | None, amendment: tuple[tuple[str, ...], ...]
) -> tuple[str, list[str]]:
    """Append an allow rule per prefix; returns the file as records name it and the lines it now holds."""
    chosen = settings or RulesSettings()
    path = remember_path(workspace, chosen)
    lines = [append_allow_rule(path, prefix).text for prefix in amendment]
    return record_name(workspace, path), lines


def file_records(sources: list[RulesSource]) -> list[RulesFileRecord]:
    return [
        RulesFileRecord(
            path=s.name,
            sha256=s.sha256,
            bytes=len(s.text.encode("utf-8")),
            scope=s.scope if s.scope in ("user", "project", "request") else "project",
        )
        for s in sources
    ]


def load_records(
    workspace: Path, settings: RulesSettings, environ: Mapping[str, str] | None = None
) -> list[RulesFileRecord]:
    """The run's rules files as the manifest records them; ``RulesError`` for a bad one."""
    _, sources = load_policy(workspace, settings, environ)
    return file_records(sources)


__all__ = [
    "RulesError",
    "amendment_for",
    "file_records",
    "load_records",
    "remember",
    "rule_record",
    "verdict_for",
]
