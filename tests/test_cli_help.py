"""``--help`` teaches every option, and a mistyped subcommand, option or choice gets a "did you mean"."""

from __future__ import annotations

import argparse

import pytest

from codex_orchestrator.cli import build_parser
from tests.test_cli import cli


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_parsers(sub))
    return found


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"{parser.prog} {action.option_strings[-1] if action.option_strings else action.dest}"
        for parser in _parsers(build_parser())
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._HelpAction)
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["exce", "--", "ls"], "(did you mean 'exec'?)"),
        (["exec", "--polcy", "never", "--", "ls"], "(did you mean '--policy'?)"),
        (["exec", "--approver", "termnal", "--", "ls"], "(did you mean 'terminal'?)"),
        (["exec", "--policy", "on-reqest", "--", "ls"], "(did you mean 'on-request'?)"),
    ],
)
def test_a_mistyped_name_gets_a_suggestion(args: list[str], needle: str) -> None:
    done = cli(*args)
    assert done.returncode == 2
    assert needle in done.stderr
