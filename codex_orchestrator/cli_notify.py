"""``codex-orchestrator automation``: create the shipped Prefect automation that notifies through a saved
notification block when an approval has waited longer than N minutes (tasks/notify.py; docs/instructions.md)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from codex_orchestrator.errors import RequestError


def add_parser(sub: Any) -> None:
    auto = sub.add_parser(
        "automation",
        help="create the Prefect automation that notifies when an approval has waited too long",
        description="Creates (or replaces) the automation 'codex-orchestrator-approval-waiting' on the Prefect "
        "server of PREFECT_API_URL: for each approval still unanswered after --after minutes, the saved "
        "notification block --block is told. Needs notification targets with `prefect_event: true`.",
    )
    auto.add_argument("--block", required=True, help="a saved notification block, <type-slug>/<name>")
    auto.add_argument("--after", type=float, default=30.0, help="minutes an approval may wait (default 30)")
    auto.add_argument(
        "--name", default=None, help="the automation's name (default codex-orchestrator-approval-waiting)"
    )


def run(args: argparse.Namespace) -> int:
    if not os.environ.get("PREFECT_API_URL"):
        raise RequestError(
            "set PREFECT_API_URL to the server the automation belongs on", field="PREFECT_API_URL"
        )
    if args.after <= 0:
        raise RequestError("must be a positive number of minutes", field="--after")
    from tasks.notify import APPROVAL_WAIT_AUTOMATION, ensure_approval_wait_automation

    created = ensure_approval_wait_automation(
        args.block, round(args.after * 60), args.name or APPROVAL_WAIT_AUTOMATION
    )
    print(json.dumps(created))
    return 0
