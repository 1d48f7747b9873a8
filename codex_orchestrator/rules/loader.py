"""Rules files evaluated by a real Starlark interpreter (starlark-pyo3, the starlark-rust that codex's
evaluator is built on), with codex's builtins ``prefix_rule``, ``host_executable`` and ``network_rule`` and its
load-time checks: every ``match`` example must match the rule and no ``not_match`` example may.

Foreign errors (Starlark's, a bad argument) become one ``RulesError`` naming the file, line and example.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from codex_orchestrator.errors import RequestError
from codex_orchestrator.rules.model import (
    NetworkRule,
    Policy,
    PrefixRule,
    RuleDecision,
    absolute_path,
    path_basename,
)

if TYPE_CHECKING:
    import starlark as sl

MAX_RULES_FILE_BYTES = 1024 * 1024


class RulesError(RequestError):
    """A rules file that codex would refuse: a syntax error, a bad argument or a failing example."""

    def __init__(
        self, message: str, *, path: str, line: int | None = None, example: str | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.example = example
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


class _RuleArgumentError(Exception):
    """Raised inside a builtin; the interpreter reports it with the call's location."""


@dataclass(frozen=True)
class RulesSource:
    """One rules file's text and how records name it."""

    name: str  # workspace-relative, or $CODEX_HOME/rules/<file>
    text: str
    scope: str = "project"  # user | project | request

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass
class _Pending:
    rules: list[PrefixRule]
    matches: list[tuple[str, ...]]
    not_matches: list[tuple[str, ...]]
    call_index: int


@dataclass
class _Builder:
    policy: Policy = field(default_factory=Policy)
    pending: list[_Pending] = field(default_factory=list)
    calls: int = 0


_UNSET: Any = object()  # an optional parameter left out (codex refuses an explicit None)


def _given(**params: object) -> None:
    """codex's optional parameters are ``Option<&str>``/``Option<list>``: ``None`` is a type error there."""
    for name, value in params.items():
        if value is None:
            raise _RuleArgumentError(f"Type of parameter `{name}` doesn't match, got None")


def _decision(raw: object) -> RuleDecision:
    if not isinstance(raw, str):
        raise _RuleArgumentError(f"decision must be a string (got {type(raw).__name__})")
    try:
        return RuleDecision(raw)
    except ValueError:
        raise _RuleArgumentError(f"invalid decision: {raw}") from None


def _justification(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _RuleArgumentError(f"justification must be a string (got {type(raw).__name__})")
    if not raw.strip():
        raise _RuleArgumentError("justification cannot be empty")
    return raw


def _pattern(raw: object) -> list[tuple[str, ...]]:
    if not isinstance(raw, list):
        raise _RuleArgumentError(f"pattern must be a list (got {type(raw).__name__})")
    tokens: list[tuple[str, ...]] = []
    for item in raw:
        if isinstance(item, str):
            tokens.append((item,))
        elif isinstance(item, list):
            if not all(isinstance(alt, str) for alt in item):
                raise _RuleArgumentError("pattern alternative must be a string")
            if not item:
                raise _RuleArgumentError("pattern alternatives cannot be empty")
            tokens.append(tuple(item))
        else:
            raise _RuleArgumentError("pattern element must be a string or list of strings")
    if not tokens:
        raise _RuleArgumentError("pattern cannot be empty")
    return tokens


def _examples(raw: object, what: str) -> list[tuple[str, ...]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _RuleArgumentError(f"{what} must be a list (got {type(raw).__name__})")
    out: list[tuple[str, ...]] = []
    for example in raw:
        if isinstance(example, str):
            try:
                tokens = shlex.split(example)
            except ValueError:
                raise _RuleArgumentError("example string has invalid shell syntax") from None
            if not tokens:
                raise _RuleArgumentError("example cannot be an empty string")
            out.append(tuple(tokens))
        elif isinstance(example, list):
            if not all(isinstance(t, str) for t in example):
                raise _RuleArgumentError("example tokens must be strings")
            if not example:
                raise _RuleArgumentError("example cannot be an empty list")
            out.append(tuple(example))
        else:
            raise _RuleArgumentError("example must be a string or list of strings")
    return out


def _host_path(raw: object, name: str) -> str:
    if not isinstance(raw, str):
        raise _RuleArgumentError(f"host_executable paths must be strings (got {type(raw).__name__})")
    absolute = absolute_path(raw)  # codex 0.163 takes no `~/`
    if absolute is None:
        raise _RuleArgumentError(f"host_executable paths must be absolute (got {raw})")
    if path_basename(absolute) != name:
        raise _RuleArgumentError(f"host_executable path `{raw}` must have basename `{name}`")
    return absolute


_LOCATION = re.compile(r"-->\s*(?P<file>.*?):(?P<line>\d+):\d+")
_ERROR_LINE = re.compile(r"^error: (?P<msg>.*)$", re.MULTILINE)


def _builtins(builder: _Builder, source: str) -> dict[str, Callable[..., None]]:
    def prefix_rule(
        pattern: object,
        decision: object = _UNSET,
        match: object = _UNSET,
        not_match: object = _UNSET,
        justification: object = _UNSET,
    ) -> None:
        index = builder.calls
        builder.calls += 1
        _given(decision=decision, match=match, not_match=not_match, justification=justification)
        chosen = RuleDecision.ALLOW if decision is _UNSET else _decision(decision)
        why = None if justification is _UNSET else _justification(justification)
        tokens = _pattern(pattern)
        matches = [] if match is _UNSET else _examples(match, "match")
        not_matches = [] if not_match is _UNSET else _examples(not_match, "not_match")
        rest = tuple(tokens[1:])
        rules = [PrefixRule(head, rest, chosen, why, source) for head in tokens[0]]
        builder.pending.append(_Pending(rules, matches, not_matches, index))
        for rule in rules:
            builder.policy.add(rule)

    def host_executable(name: object, paths: object) -> None:
        builder.calls += 1
        if not isinstance(name, str) or not name:
            raise _RuleArgumentError("host_executable name cannot be empty")
        if path_basename(name) != name or "/" in name:
            raise _RuleArgumentError(f"host_executable name must be a bare executable name (got {name})")
        if not isinstance(paths, list):
            raise _RuleArgumentError("host_executable paths must be a list")
        parsed: list[str] = []
        for raw in paths:
            path = _host_path(raw, name)
            if path not in parsed:
                parsed.append(path)
        builder.policy.host_executables[name] = tuple(parsed)

    def network_rule(
        host: object, protocol: object, decision: object, justification: object = _UNSET
    ) -> None:
        builder.calls += 1
        _given(justification=justification)
        if not isinstance(host, str) or not host.strip():
            raise _RuleArgumentError("network_rule host cannot be empty")
        if protocol not in ("http", "https", "https_connect", "http-connect", "socks5_tcp", "socks5_udp"):
            raise _RuleArgumentError(
                "network_rule protocol must be one of http, https, socks5_tcp, socks5_udp"
            )
        chosen = RuleDecision.FORBIDDEN if decision == "deny" else _decision(decision)
        builder.policy.network_rules.append(
            NetworkRule(
                host.strip().lower(),
                str(protocol),
                chosen,
                None if justification is _UNSET else _justification(justification),
            )
        )

    return {"prefix_rule": prefix_rule, "host_executable": host_executable, "network_rule": network_rule}


def _dialect() -> sl.Dialect:
    import starlark as sl  # only when there is a rules file to read (start-up of `exec`)

    dialect = sl.Dialect.extended()
    dialect.enable_f_strings = True  # as codex's parser
    return dialect


def _evaluate(builder: _Builder, source: RulesSource, fail_at_call: int | None = None) -> None:
    """Run the file's Starlark with our builtins bound to ``builder``."""
    import starlark as sl

    module = sl.Module()
    builtins = _builtins(builder, source.name)
    if fail_at_call is not None:
        inner = builtins["prefix_rule"]

        def locate(*args: Any, **kwargs: Any) -> None:
            if builder.calls == fail_at_call:
                raise _RuleArgumentError("located")
            inner(*args, **kwargs)

        builtins["prefix_rule"] = locate
    for name, fn in builtins.items():
        module.add_callable(name, fn)
    ast = sl.parse(source.name, source.text, _dialect())
    sl.eval(module, ast, sl.Globals.standard())


def _starlark_error(exc: sl.StarlarkError, path: str) -> RulesError:
    text = str(exc)
    where = _LOCATION.search(text)
    said = _ERROR_LINE.search(text)
    message = said.group("msg") if said else text.strip().splitlines()[0]
    message = message.removeprefix("_RuleArgumentError: ")
    return RulesError(message, path=path, line=int(where.group("line")) if where else None)


def _call_line(source: RulesSource, call_index: int) -> int | None:
    """The line of the ``call_index``-th builtin call: evaluate again, stopping there."""
    import starlark as sl

    try:
        _evaluate(_Builder(), source, fail_at_call=call_index)
    except sl.StarlarkError as exc:
        return _starlark_error(exc, source.name).line
    return None


def _render(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def load_sources(sources: Sequence[RulesSource]) -> Policy:
    """One policy from several files, read in order (later host_executable definitions replace earlier)."""
    builder = _Builder()
    if not sources:
        return builder.policy
    import starlark as sl

    for source in sources:
        start = len(builder.pending)
        builder.calls = 0
        try:
            _evaluate(builder, source)
        except sl.StarlarkError as exc:
            raise _starlark_error(exc, source.name) from None
        for pending in builder.pending[start:]:
            _validate(builder.policy, pending, source)
    return builder.policy


def _validate(policy: Policy, pending: _Pending, source: RulesSource) -> None:
    """codex's load-time checks of one prefix_rule's examples, against that rule alone."""
    only = Policy(host_executables=policy.host_executables)
    for rule in pending.rules:
        only.add(rule)
    pattern = pending.rules[0].pattern_text()
    for example in pending.not_matches:
        if only.check(example, resolve_host_executables=True).matches:
            raise RulesError(
                f"not_match example `{_render(example)}` matches rule {pattern}",
                path=source.name,
                line=_call_line(source, pending.call_index),
                example=_render(example),
            )
    unmatched = [e for e in pending.matches if not only.check(e, resolve_host_executables=True).matches]
    if unmatched:
        shown = ", ".join(f"`{_render(e)}`" for e in unmatched)
        raise RulesError(
            f"match example {shown} does not match rule {pattern}",
            path=source.name,
            line=_call_line(source, pending.call_index),
            example=_render(unmatched[0]),
        )


@lru_cache(maxsize=64)
def _cached(sources: tuple[RulesSource, ...]) -> Policy:
    return load_sources(sources)


def load_cached(sources: Sequence[RulesSource]) -> Policy:
    """``load_sources`` memoised by content: a call re-reads the files, not the Starlark."""
    return _cached(tuple(sources))
