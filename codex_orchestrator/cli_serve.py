"""``codex-orchestrator serve``: serve prefect.yaml's deployments from this process, named ``<name>-served``;
``codex-orchestrator task-worker``: a Prefect task worker for the tool-call task (``runner: task-workers``)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    serve = sub.add_parser(
        "serve",
        help="serve prefect.yaml's deployments from here (named <name>-served; work-pool ones stay)",
        description="Serve the deployments of prefect.yaml from this process until interrupted, under names "
        "of their own (<name>-served) so that the work-pool deployments of `prefect deploy` are never replaced. "
        "Needs PREFECT_API_URL (a running `prefect server start`).",
    )
    serve.add_argument("names", nargs="*", metavar="NAME", help="only these deployments (default: all)")
    serve.add_argument(
        "--no-schedules", action="store_true", help="serve without the schedules of prefect.yaml"
    )

    worker = sub.add_parser(
        "task-worker",
        help="run the tool calls of runs with `runner: task-workers` (a Prefect task worker)",
        description="A Prefect task worker for the tool-call task, like `prefect task serve -m tasks.tool_call` "
        "but with one API client shared by its calls. Needs PREFECT_API_URL; the machine must share the runs' "
        "workspace and records (docs/scale-out.md).",
    )
    worker.add_argument("--limit", type=_limit, default=10, help="calls at once (default 10; 0: no limit)")


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"--limit must be a whole number >= 0, not {text!r}")
    return value


def run_task_worker(args: argparse.Namespace) -> int:
    from flows.task_worker import serve_tool_calls  # imports Prefect: only when serving

    serve_tool_calls(args.limit or None)
    return 0


def run(args: argparse.Namespace) -> int:
    from flows.serving import serve_all  # imports Prefect: only when serving

    serve_all(names=args.names, with_schedules=not args.no_schedules)
    return 0
