"""Hostile request documents: a YAML alias bomb, deep nesting, self-reference and oversize files are refused with
one line naming the cause, in ``run``, ``resume``, the Python SDK, served deployments and inline requests.

The old code spent minutes walking the nine-level bomb's 9^9 values; each process here has a generous bound
(``HANG_BOUND_S``) only so that such a hang fails the test instead of stalling the suite. bench/hostile_requests.py
measures how fast the refusals are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.hostile_requests import VALID, alias_bomb, nested
from codex_orchestrator.documents import MAX_DEPTH, MAX_JSON_BYTES, MAX_YAML_BYTES, load_document
from codex_orchestrator.errors import RequestError
from codex_orchestrator.request import MAX_REQUEST_BYTES, load_request, parse_request

CLI = [sys.executable, "-m", "codex_orchestrator.cli"]
HANG_BOUND_S = 120


def _load(text: str, *, json_format: bool = False) -> object:
    return load_document(text, name="r.yaml", json_format=json_format, max_expanded_bytes=MAX_REQUEST_BYTES)


def test_the_alias_bomb_is_refused_naming_its_aliases() -> None:
    with pytest.raises(RequestError, match=r"r\.yaml: YAML aliases expand it to \d+ bytes, beyond the limit"):
        _load(alias_bomb())


def test_a_scalar_repeated_through_aliases_counts_at_every_use() -> None:
    text = f"s: &s {'y' * 200_000}\nprofile: [{', '.join(['*s'] * 40)}]\n" + VALID
    with pytest.raises(RequestError, match="YAML aliases expand it"):
        _load(text)


def test_a_value_that_contains_itself_is_refused() -> None:
    with pytest.raises(RequestError, match="contain itself"):
        _load("a: &a [x, *a]\n" + VALID)


@pytest.mark.parametrize("json_format", [False, True], ids=["yaml", "json"])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_deep_nesting_is_refused(depth: int, json_format: bool) -> None:
    with pytest.raises(RequestError, match=f"nested more than {MAX_DEPTH} levels deep"):
        _load(nested(depth, json_format=json_format), json_format=json_format)


def test_an_oversize_file_is_refused_before_it_is_parsed() -> None:
    text = VALID + "#" + "x" * MAX_YAML_BYTES + "\n"
    with pytest.raises(RequestError, match=f"the limit is {MAX_YAML_BYTES} bytes"):
        _load(text)
    document = '{"task": "t", "goal": "' + "g" * MAX_JSON_BYTES + '"}'
    with pytest.raises(RequestError, match=f"the limit is {MAX_JSON_BYTES} bytes"):
        _load(document, json_format=True)


def test_anchors_within_the_limits_load_as_before() -> None:
    text = (
        "retry: &retry {max_attempts: 2, base_delay_s: 0.1}\n"
        "task: t\nworkspace: .\nprofile: &p [read, run]\n"
        "steps:\n  - {name: a, command: ls, retry: *retry, capabilities: *p}\n"
        "  - {name: b, command: ls, retry: *retry, capabilities: *p}\n"
    )
    data = _load(text)
    assert isinstance(data, dict)
    assert data["steps"][1]["retry"] == {"max_attempts": 2, "base_delay_s": 0.1}
    assert data["steps"][0]["capabilities"] == ["read", "run"]


def test_an_inline_request_with_shared_values_is_refused(tmp_path: Path) -> None:
    """A request built in Python (the workflow API, a deployment's inline request) may share lists: the same
    bound holds, before any walk of its values."""
    inner: list[object] = ["x"] * 9
    for _ in range(8):
        inner = [inner] * 9
    request = {
        "task": "t",
        "workspace": str(tmp_path),
        "profile": inner,
        "steps": [{"name": "s", "command": "ls"}],
    }
    with pytest.raises(RequestError, match="shared values expand it"):
        parse_request(request)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=HANG_BOUND_S,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PREFECT_API_URL": ""},
    )


def _one_line_refusal(done: subprocess.CompletedProcess[str], needle: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr[-2000:])
    assert needle in done.stderr and done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("bomb.yaml", alias_bomb(), "YAML aliases expand it"),
        ("deep.yaml", nested(100_000, json_format=False), "nested more than"),
        ("deep.json", nested(100_000, json_format=True), "nested more than"),
    ],
)
def test_run_refuses_a_hostile_request_in_one_line(tmp_path: Path, name: str, text: str, needle: str) -> None:
    (tmp_path / name).write_text(text)
    done = _cli("run", name, cwd=tmp_path)
    _one_line_refusal(done, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing written


def test_resume_refuses_a_hostile_stored_request_before_starting(tmp_path: Path) -> None:
    run_dir = tmp_path / ".runs" / "deep" / "cli" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"run_id": "r1", "status": "interrupted"}))
    (run_dir / "request.json").write_text(nested(100_000, json_format=True))
    done = _cli("resume", "r1", "--runs-dir", str(tmp_path / ".runs"), cwd=tmp_path)
    _one_line_refusal(done, "nested more than")


def test_the_python_sdk_refuses_the_bomb(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(alias_bomb())
    script = (
        "import sys\nfrom codex_orchestrator.sdk import Client, SdkError\n"
        "try:\n    Client().run('bomb.yaml')\nexcept SdkError as exc:\n    print(exc)\n    sys.exit(2)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=HANG_BOUND_S
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "YAML aliases expand it" in done.stdout


def test_a_served_deployment_file_with_a_bomb_inline_is_refused(tmp_path: Path) -> None:
    from flows.serving import read_spec

    request = "".join(f"        {line}\n" for line in alias_bomb().splitlines())
    (tmp_path / "prefect.yaml").write_text(
        "deployments:\n  - name: boom\n    entrypoint: flows/autonomy.py:autonomy\n    parameters:\n"
        f"      request:\n{request}"
    )
    with pytest.raises(RequestError, match="YAML aliases expand it"):
        read_spec(tmp_path)


def test_load_request_still_names_yaml_syntax_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("task: [unclosed\n")
    with pytest.raises(RequestError, match=r"not valid YAML: .* at line \d+, column \d+"):
        load_request(path)
