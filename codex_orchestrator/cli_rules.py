"""The command line of exec-policy rules: ``rules check`` (what the rules, the classifier and the run's policy
decide about a command; ``--json`` in codex's ``execpolicy check`` shape, plus ours) and ``rules test`` (load
files and run their inline ``match``/``not_match`` examples). Wired into cli.py with ``add_parser`` / ``run``."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

from codex_orchestrator.errors import RequestError


def add_parser(sub: Any) -> None:
    rules = sub.add_parser(
        "rules",
        help="codex exec-policy rules: check a command against them, or test their inline examples",
        description="Rules files are codex's (Starlark prefix_rule / host_executable). Without --rules, the "
        "files a run reads: $CODEX_HOME/rules/*.rules and <workspace>/.codex/rules/*.rules.",
    )
    actions = rules.add_subparsers(
        dest="rules_command", metavar="{check,test}", required=True, help="check a command, or test files"
    )
    check = actions.add_parser(
        "check",
        help="print the decision and matching rules for a command, and what the classifier and policy add",
        description="Example: codex-orchestrator rules check --json -- git push origin main",
    )
    check.add_argument(
        "--rules",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a rules file (repeatable); default: the files a run in --workspace reads",
    )
    check.add_argument(
        "--json", action="store_true", help="codex's execpolicy check JSON, with our additions"
    )
    check.add_argument(
        "--resolve-host-executables",
        action="store_true",
        help="as codex's flag: match /abs/path/prog against rules for prog (the gate always does)",
    )
    _common(check)
    check.add_argument(
        "--policy", default="on-request", help="the run's approval policy (default on-request)"
    )
    check.add_argument(
        "--profile", default="read", help="the run's capabilities, comma-separated (default read)"
    )
    check.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ...", help="the command, after --")
    test = actions.add_parser("test", help="load rules files and run their match / not_match examples")
    test.add_argument("files", nargs="*", type=Path, metavar="FILE", help="default: the files a run reads")
    _common(test)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", type=Path, default=None, help="default: the current directory")
    parser.add_argument("--no-user-rules", action="store_true", help="ignore $CODEX_HOME/rules")


def _sources(files: list[Path], args: argparse.Namespace) -> tuple[Path, list[Any]]:
    from codex_orchestrator.rules.loader import RulesSource
    from codex_orchestrator.rules.sources import RulesSettings, find_sources

    workspace = (args.workspace or Path.cwd()).resolve()
    if not workspace.is_dir():
        raise RequestError(f"{workspace} is not a directory", field="--workspace")
    if not files:
        return workspace, find_sources(workspace, RulesSettings(include_user=not args.no_user_rules))
    sources = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RequestError(f"cannot read {path}: {exc}", field="--rules") from exc
        sources.append(RulesSource(name=str(path), text=text, scope="request"))
    return workspace, sources


def run(args: argparse.Namespace) -> int:
    return _check(args) if args.rules_command == "check" else _test(args)


def _test(args: argparse.Namespace) -> int:
    from codex_orchestrator.rules.loader import load_sources

    _, sources = _sources(args.files, args)
    policy = load_sources(sources)  # RulesError: one line naming the file, line and example; exit 2
    by_file: dict[str, int] = {}
    for rule in policy.rules:
        by_file[rule.source] = by_file.get(rule.source, 0) + 1
    for source in sources:
        print(
            f"ok {source.name}: {by_file.get(source.name, 0)} rule(s), examples pass ({source.sha256[:12]})"
        )
    if not sources:
        print("no rules files found")
    return 0


def _check(args: argparse.Namespace) -> int:
    from codex_orchestrator.commands import call_facts
    from codex_orchestrator.policy import ApprovalPolicy, ToolKind, parse_profile
    from codex_orchestrator.rules.loader import load_sources
    from codex_orchestrator.rules.verdict import decide_with_rules, evaluate

    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise RequestError("give the command after --", field="argv")
    try:
        policy_name = ApprovalPolicy(args.policy)
    except ValueError:
        raise RequestError(
            f"unknown policy {args.policy!r}",
            field="--policy",
            allowed=", ".join(p.value for p in ApprovalPolicy),
        ) from None
    try:
        profile = parse_profile(n.strip() for n in args.profile.split(",") if n.strip())
    except ValueError as exc:
        raise RequestError(str(exc), field="--profile") from None
    workspace, sources = _sources(args.rules, args)
    rules = load_sources(sources)
    cwd = str(workspace)
    codex_view = rules.check(argv, resolve_host_executables=args.resolve_host_executables, cwd=cwd)
    facts = call_facts(ToolKind.SHELL, list(argv))
    verdict = evaluate(rules, facts.parts, facts.opaque, cwd)
    requirement = decide_with_rules(policy_name, profile, facts, verdict)
    if args.json:
        out = codex_view.as_json()
        out["parts"] = [
            {"command": list(p.argv), "wrapper": p.wrapper, **e.as_json()}
            for p, e in zip(
                facts.parts, verdict.evaluations or [rules.check(p.argv) for p in facts.parts], strict=True
            )
        ]
        out["classifier"] = {
            "needs": sorted(c.value for c in facts.needs),
            "readOnlySafe": facts.read_only_safe,
        }
        out["gate"] = {
            "policy": policy_name.value,
            "profile": sorted(c.value for c in profile),
            "outcome": requirement.outcome.value,
            "reason": requirement.reason,
            "rule": None
            if verdict.match is None
            else {
                "file": verdict.match.rule.source,
                "pattern": verdict.match.rule.pattern_text(),
                "decision": verdict.match.decision.value,
            },
        }
        print(json.dumps(out, ensure_ascii=False))
        return 0
    print(f"command: {shlex.join(argv)}")
    print(
        f"rules decide: {codex_view.decision.value if codex_view.decision else 'nothing (no rule matches)'}"
    )
    for m in codex_view.matches:
        why = f" — {m.rule.justification}" if m.rule.justification else ""
        print(
            f"  {m.decision.value}: {m.rule.source} {m.rule.pattern_text()} matched "
            f"{shlex.join(m.matched_prefix)}{why}"
        )
    if len(facts.parts) > 1:
        print("each command it runs:")
        for part, evaluation in zip(facts.parts, verdict.evaluations, strict=False):
            said = evaluation.decision.value if evaluation.decision else "no rule"
            print(f"  {shlex.join(part.argv)}: {said}{' (wrapper)' if part.wrapper else ''}")
    needs = ", ".join(sorted(c.value for c in facts.needs))
    print(f"classifier: needs {needs}{'; read-only safe' if facts.read_only_safe else ''}")
    print(
        f"gate ({policy_name.value}, profile {', '.join(sorted(c.value for c in profile)) or 'none'}): "
        f"{requirement.outcome.value} — {requirement.reason}"
    )
    return 0
