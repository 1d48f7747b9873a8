#!/usr/bin/env python3
"""A scripted stand-in for a review command and an auto-reviewer (codex's `codex review`, `approvals_reviewer`).

Usage:
  scripted_reviewer.py review    print a review of the repository's latest work (as `codex review` would)
  scripted_reviewer.py verdict   read the review $CODEX_REVIEW_FILE names, print a verdict as JSON:
                                 approved when every required guardrail passed and something changed,
                                 else changes-requested saying why

From the directory that holds examples/:

    cp -r examples/sample-repo repo && git -C repo init -q && git -C repo add -A
    (cd repo && python ../examples/scripted_reviewer.py review)
    echo '{"run_id": "r1", "diff_stat": "1 file", "files": ["calc.py"], "guardrails": []}' > review.json
    CODEX_REVIEW_FILE=review.json python examples/scripted_reviewer.py verdict   # {"verdict": "approved", ...}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def review() -> int:
    log = subprocess.run(
        ["git", "log", "-3", "--format=%h %s", "--no-decorate"], capture_output=True, text=True, check=False
    )
    status = subprocess.run(["git", "status", "--short"], capture_output=True, text=True, check=False)
    commits = [line for line in log.stdout.splitlines() if line]
    print(f"review: looked at the last {len(commits)} commit(s):")
    for line in commits:
        print(f"  {line}")
    dirty = [line for line in status.stdout.splitlines() if line]
    print("review: the work tree is clean" if not dirty else f"review: {len(dirty)} uncommitted change(s)")
    return 0


def verdict() -> int:
    path = os.environ.get("CODEX_REVIEW_FILE")
    if not path:
        print("reviewer: CODEX_REVIEW_FILE is not set", file=sys.stderr)
        return 2
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    failing = [g["name"] for g in data["guardrails"] if g["required"] and g["result"] != "passed"]
    advisory = [g["name"] for g in data["guardrails"] if not g["required"] and g["result"] != "passed"]
    print(f"reviewer: read the review of run {data['run_id']}: {data['diff_stat']}")
    if failing:
        result = {
            "verdict": "changes-requested",
            "comments": "required guardrails failed: " + ", ".join(failing),
        }
    elif not data["files"]:
        result = {"verdict": "changes-requested", "comments": "nothing changed"}
    else:
        note = f" (advisory findings: {', '.join(advisory)})" if advisory else ""
        result = {"verdict": "approved", "comments": f"{len(data['files'])} file(s) look right{note}"}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "review":
        sys.exit(review())
    if mode == "verdict":
        sys.exit(verdict())
    print(__doc__, file=sys.stderr)
    sys.exit(2)
