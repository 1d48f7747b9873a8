"""The Node.js SDK's tests run as a Node user runs them: plain ``node --test`` (and ``npm test``) in sdk/node.

Node's default discovery runs every file under ``test/``; a helper there is run as a test file of its own. This
runs discovery for real with a name pattern no test has, so each discovered file is loaded and none of the tests
(which need the built SDK, a Prefect server, sandboxes) runs: a file that fails on its own fails here. The tests
themselves run in ``make node-test``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

NODE_SDK = ROOT / "sdk" / "node"
NO_TEST_IS_NAMED = "^no test is named this$"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def _discover(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*argv, f"--test-name-pattern={NO_TEST_IS_NAMED}"],
        cwd=NODE_SDK,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def _counts(tap: str) -> dict[str, int]:
    return {key: int(value) for key, value in re.findall(r"^# (tests|pass|fail|skipped) (\d+)$", tap, re.M)}


def test_plain_node_test_discovers_only_tests() -> None:
    done = _discover("node", "--test")
    counts = _counts(done.stdout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert counts["fail"] == 0 and counts["tests"] == counts["skipped"] > 0, counts


def test_npm_test_is_plain_discovery() -> None:
    """``npm test`` runs node's discovery too (no file list of its own to drift from ``make node-test``)."""
    script = json.loads((NODE_SDK / "package.json").read_text())["scripts"]["test"]
    assert script.split()[:2] == ["node", "--test"] and not any(
        w.endswith((".mjs", ".js")) for w in script.split()
    )
    assert all(path.name.endswith(".test.mjs") for path in (NODE_SDK / "test").iterdir()), sorted(
        p.name for p in (NODE_SDK / "test").iterdir()
    )


def test_the_makefile_runs_the_same_discovery() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\nnode-test:", 1)[1].split("\n\n", 1)[0]
    assert "node --test $(NODE_TEST_FLAGS)\n" in recipe + "\n"
    assert "test/*" not in recipe
