"""Planted secrets: values of several shapes go through a real ``run --json`` and ``exec --json`` on a real
Prefect server, and none of them may be found in any record, on stdout or stderr, or in Prefect's database.

Shapes: a quote, a backslash, non-ASCII text, one printed split across two PTY reads, one written literally in
an exec's command, and approval reasons and reviewer names that carry secrets (typed at the CLI, which knows the
run's secret variables, and sent raw as the Prefect UI's form would). A request with a secret's value written into
it is refused before anything is written (the request is kept as written, for the milestones and a resume).
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, validate_events, validate_manifest

CLI = [sys.executable, "-m", "codex_orchestrator.cli"]
TAG = uuid.uuid4().hex[:8]
SECRETS = {
    "CO_QUOTE_TOKEN": f'q"uo"te-{TAG}-one',
    "CO_BACKSLASH_TOKEN": f"back\\sl\\ash-{TAG}-two",
    "CO_UNICODE_TOKEN": f"ünï-秘密-{TAG}-three",
    "CO_SPLIT_TOKEN": f"splitfirst{TAG}-splitsecond{TAG}",
    "CO_LITERAL_TOKEN": f"literal-in-command-{TAG}",
}
SPLIT = SECRETS["CO_SPLIT_TOKEN"]
HALF = len("splitfirst") + len(TAG)
# Printed in two writes with a pause between, so the PTY delivers it in two reads.
PRINT_SPLIT = f"printf '%s' '{SPLIT[:HALF]}'; sleep 0.6; printf '%s\\n' '{SPLIT[HALF:]}'"
PRINT_ENV = 'printf "%s|%s|%s\\n" "$CO_QUOTE_TOKEN" "$CO_BACKSLASH_TOKEN" "$CO_UNICODE_TOKEN"'


def forms(secret: str) -> list[str]:
    """The secret as it may appear in text: plain, JSON-escaped (ASCII or not), and its base64."""
    return [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        base64.b64encode(secret.encode()).decode(),
    ]


def leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if any(f in text for f in forms(value))]


@dataclass
class Planted:
    texts: dict[str, str] = field(default_factory=dict)  # where -> content
    manifests: list[dict[str, object]] = field(default_factory=list)


def _env(prefect_server: str) -> dict[str, str]:
    return {**os.environ, **SECRETS, "PREFECT_API_URL": prefect_server}


def _wait_pending(manifest: Path, proc: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ended before asking: {proc.communicate()}")
        if manifest.exists():
            try:
                pending = json.loads(manifest.read_text()).get("pending_approval")
            except ValueError:
                pending = None
            if pending and pending.get("flow_run_id"):
                return pending  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError("no approval was asked")


def _collect(planted: Planted, label: str, run_dir: Path) -> None:
    for name in ("manifest.json", "events.jsonl", "traces.jsonl"):
        planted.texts[f"{label}/{name}"] = (run_dir / name).read_text(encoding="utf-8")
    planted.texts[f"{label}/metrics.json"] = (run_dir.parents[1] / "metrics.json").read_text(encoding="utf-8")
    planted.manifests.append(validate_manifest(run_dir / "manifest.json"))
    validate_events(run_dir / "events.jsonl")


def _run(workspace: Path, tmp: Path, prefect_server: str, planted: Planted) -> None:
    request = {
        "task": "planted",
        "workspace": str(workspace),
        "goal": "plant secrets",
        "profile": ["read", "run"],
        "sandbox": "none",
        "secret_env": sorted(SECRETS),
        "steps": [
            {"name": "print-env", "command": PRINT_ENV},
            {"name": "print-split", "command": PRINT_SPLIT},
            {"name": "ask", "command": "echo asked", "capabilities": ["network"]},
        ],
    }
    request_file = tmp / "request.yaml"
    request_file.write_text(yaml.safe_dump(request, allow_unicode=True), encoding="utf-8")
    env = _env(prefect_server)
    proc = subprocess.Popen(
        [*CLI, "run", str(request_file), "--json", "--run-id", "planted-run", "--no-prompt"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    run_dir = workspace / ".runs/planted/cli/planted-run"
    try:
        _wait_pending(run_dir / "manifest.json", proc)
        reason = f"fine, {SECRETS['CO_QUOTE_TOKEN']} and {SECRETS['CO_BACKSLASH_TOKEN']}"
        answer = subprocess.run(
            [*CLI, "approve", "planted-run", "--runs-dir", str(workspace / ".runs"), "--reason", reason,
             "--reviewer", f"rev {SECRETS['CO_UNICODE_TOKEN']}"],
            cwd=ROOT, capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert answer.returncode == 0, answer.stderr
        planted.texts["approve/stdout"], planted.texts["approve/stderr"] = answer.stdout, answer.stderr
        out, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    planted.texts["run/stdout"], planted.texts["run/stderr"] = out, err
    _collect(planted, "run", run_dir)
    events = [json.loads(line) for line in out.splitlines()]
    output = "".join(e["data"] for e in events if e["type"] == "output")
    assert output.count("***") >= 4, output  # every planted value was printed, and redacted
    manifest = planted.manifests[-1]
    approval = manifest["approvals"][0]  # type: ignore[index]
    assert approval["answered_by"] == "cli" and approval["answer_reason"] == "fine, *** and ***"
    assert approval["reviewer"] == "rev ***"


def _exec(tmp: Path, prefect_server: str, planted: Planted) -> None:
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    work = tmp / "exec-ws"
    work.mkdir()
    secret_args = [a for name in sorted(SECRETS) for a in ("--secret-env", name)]
    literal = SECRETS["CO_LITERAL_TOKEN"]
    proc = subprocess.Popen(
        [*CLI, "exec", "--json", "--cwd", str(work), "--run-id", "planted-exec", "--profile", "read",
         "--approver", "prefect", "--ask", "--sandbox", "none", *secret_args, "--",
         "sh", "-c", f"{PRINT_ENV}; {PRINT_SPLIT}; echo '{literal}'"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(prefect_server),
    )  # fmt: skip
    run_dir = work / ".runs/exec/cli/planted-exec"
    try:
        pending = _wait_pending(run_dir / "manifest.json", proc)
        # What the Prefect UI's Resume form sends: the raw text a person typed (the form has no channel field:
        # Prefect validates the input against the form's schema, which allows no other key).
        run_input = {
            "decision": "approve",
            "reason": f"ui says {SECRETS['CO_UNICODE_TOKEN']}",
            "reviewer": f"alice {SECRETS['CO_QUOTE_TOKEN']}",
        }
        with temporary_settings({PREFECT_API_URL: prefect_server}):
            deadline = time.monotonic() + 60
            while True:
                try:
                    resume_flow_run(uuid.UUID(str(pending["flow_run_id"])), run_input=run_input)
                    break
                except Exception:  # the pause may still be settling
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        out, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    planted.texts["exec/stdout"], planted.texts["exec/stderr"] = out, err
    _collect(planted, "exec", run_dir)
    approval = planted.manifests[-1]["approvals"][0]  # type: ignore[index]
    assert approval["answered_by"] == "prefect-ui"  # established by the channel, not typed
    assert approval["answer_reason"] == "ui says ***" and approval["reviewer"] == "alice ***"


@pytest.fixture(scope="module")
def planted(prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    tmp = tmp_path_factory.mktemp("planted")
    workspace = tmp / "ws"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    result = Planted()
    _run(workspace, tmp, prefect_server, result)
    _exec(tmp, prefect_server, result)
    yield result


def test_no_record_or_stream_holds_a_secret(planted: Planted) -> None:
    assert set(planted.texts) >= {
        "run/manifest.json", "run/events.jsonl", "run/traces.jsonl", "run/metrics.json", "run/stdout",
        "run/stderr", "exec/manifest.json", "exec/events.jsonl", "exec/traces.jsonl", "exec/metrics.json",
        "exec/stdout", "exec/stderr", "approve/stdout", "approve/stderr",
    }  # fmt: skip
    found = {where: leaks(text) for where, text in planted.texts.items() if leaks(text)}
    assert found == {}


def _database_dump() -> str:
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    path = str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value()).split(":///", 1)[1]  # sqlite+aiosqlite:///PATH
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(connection.iterdump())
    finally:
        connection.close()


def test_prefect_database_holds_no_approval_answer_or_printed_secret(planted: Planted) -> None:
    """Everything but the literal in the request (flow parameters, below): answers, output, logs, artifacts."""
    dump = _database_dump()
    assert planted.manifests and "planted-exec" in dump  # the dump is of the server the runs used
    found = [name for name in leaks(dump) if name != "CO_LITERAL_TOKEN"]
    assert found == []


def test_prefect_database_holds_no_secret(planted: Planted) -> None:
    assert leaks(_database_dump()) == []


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"name": "push", "command": "git push https://x:{value}@example.invalid/r"}, "steps[push].command"),
        (
            {"name": "push", "command": ["curl", "-u", "x:{value}", "example.invalid"]},
            "steps[push].command[2]",
        ),
        ({"name": "push", "command": "git push", "env": {"AUTH": "{value}"}}, "steps[push].env.AUTH"),
    ],
)
def test_a_secret_value_written_into_the_request_is_refused(
    tmp_path: Path, step: dict[str, object], field: str
) -> None:
    """Secrets travel by name: the request is kept as written (request.json), so a value typed into it is bad
    input, refused before anything is written, and the refusal does not repeat it."""
    value = SECRETS["CO_LITERAL_TOKEN"]
    filled = json.loads(json.dumps(step).replace("{value}", value))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    request = tmp_path / "request.yaml"
    request.write_text(
        yaml.safe_dump(
            {
                "task": "typed",
                "workspace": str(workspace),
                "secret_env": ["CO_LITERAL_TOKEN"],
                "steps": [filled],
            }
        )
    )
    done = subprocess.run(
        [*CLI, "run", str(request), "--no-prompt"],
        cwd=tmp_path,
        env={**os.environ, "CO_LITERAL_TOKEN": value},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"{field}: contains the value of secret CO_LITERAL_TOKEN" in done.stderr
    assert done.stderr.count("\n") == 1 and value not in done.stderr + done.stdout
    assert list(workspace.iterdir()) == []
