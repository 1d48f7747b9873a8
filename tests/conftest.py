"""Shared fixtures: scratch workspaces, schema validation, and a real Prefect server for the flow tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from flows.server_tuning import apply_server_tuning

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Embedded servers (benchmarks, SDK runs, the demo) start slowly beside busy loops; Prefect's 20 s is too tight.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# Every server the suite starts (the harness, `prefect server start`, embedded ones) runs as the product's do.
apply_server_tuning(os.environ)


def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def validate_manifest(path: Path) -> dict[str, Any]:
    """Every manifest the tests produce must validate against the checked-in schema."""
    data = json.loads(path.read_text())
    _validator("manifest.schema.json").validate(data)
    return data  # type: ignore[no-any-return]


def validate_events(path: Path) -> list[dict[str, Any]]:
    validator = _validator("events.schema.json")
    events = [json.loads(line) for line in path.read_text().splitlines()]
    for event in events:
        validator.validate(event)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    return events


def validate_event_lines(lines: list[str]) -> list[dict[str, Any]]:
    validator = _validator("events.schema.json")
    events = [json.loads(line) for line in lines]
    for event in events:
        validator.validate(event)
    return events


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A git repository copied from examples/sample-repo."""
    repo = tmp_path / "repo"
    # Without the records a run of the sample repository itself leaves there (the `health` deployment's
    # workspace is examples/sample-repo): a test's workspace starts with none.
    shutil.copytree(ROOT / "examples" / "sample-repo", repo, ignore=shutil.ignore_patterns(".runs", "out"))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    return repo


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """A real Prefect server (SQLite, temporary database) for the whole session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield str(PREFECT_API_URL.value())


def python_child(
    code: str, *args: str, timeout_s: float, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run ``code`` in a Python process of its own from the checkout: (exit code, stdout, stderr). Killed after
    ``timeout_s`` (exit -9): a bound only a hang reaches, for tests whose bug would hang their own process."""
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
    return child.returncode, out, err
