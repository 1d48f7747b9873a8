"""``codex-orchestrator serve``: serve prefect.yaml's deployments from this process, named ``<name>-served``."""

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


def run(args: argparse.Namespace) -> int:
    from flows.serving import serve_all  # imports Prefect: only when serving

    serve_all(names=args.names, with_schedules=not args.no_schedules)
    return 0
