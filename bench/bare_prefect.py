"""The baseline of bench/prefect_cost.py: a bare Prefect ``@task`` that runs a command with ``subprocess.run``,
fanned out by a bare flow on its thread runner (``.submit``) or to task workers (``.delay`` and
``prefect.task_worker.serve``), with nothing of ours in between.

    python bench/bare_prefect.py flow --calls 40 --runner thread --parallel 8 -- sleep 0.01
    python bench/bare_prefect.py worker --limit 8
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import subprocess
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

EXIT_FAILED = 1


# Never cached, as a tool call is not: a cache hit would skip the very work being measured.
@task(name="bare-call", cache_policy=NO_CACHE)
def bare_call(command: list[str], index: int) -> int:
    """Run ``command``; ``index`` tells the calls apart (Prefect names and keys them in order anyway)."""
    return subprocess.run(command, check=True).returncode


@flow(name="bare-fanout")
def bare_fanout(command: list[str], calls: int, runner: str) -> int:
    """``calls`` runs of ``command`` at once, on the flow's threads or on task workers; the number that failed."""
    if runner == "thread":
        futures = [bare_call.submit(command, i) for i in range(calls)]
    else:
        futures = [bare_call.delay(command, i) for i in range(calls)]
    wait(futures)
    return sum(1 for f in futures if not f.state.is_completed())


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = args.add_subparsers(dest="role", required=True)
    flow_args = sub.add_parser("flow", help="run the fan-out flow once")
    flow_args.add_argument("--calls", type=int, required=True)
    flow_args.add_argument("--runner", choices=["thread", "task-workers"], required=True)
    flow_args.add_argument("--parallel", type=int, default=8, help="threads of the thread runner")
    flow_args.add_argument("command", nargs="+")
    worker_args = sub.add_parser("worker", help="serve bare-call as a task worker until interrupted")
    worker_args.add_argument("--limit", type=int, default=None)
    options = args.parse_args(argv)
    if options.role == "worker":
        from prefect.task_worker import serve

        serve(bare_call, limit=options.limit)
        return 0
    runner: TaskRunner[Any] = ThreadPoolTaskRunner(max_workers=options.parallel)
    fanout = bare_fanout.with_options(task_runner=runner)
    failed = fanout(options.command, options.calls, options.runner)
    if failed:
        print(f"{failed} of {options.calls} bare calls did not complete", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
