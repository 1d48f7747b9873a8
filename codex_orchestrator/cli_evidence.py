"""``codex-orchestrator metrics`` and ``verify``: the evidence of runs, rebuilt and checked from their records.

``metrics TASK`` shows (``--rollout-at``/``--baseline``: re-chooses, then rewrites) the task's snapshots;
``metrics --recompute TASK`` rebuilds them from the event logs alone and compares them byte for byte with what
the runs wrote (exit 1 when one differs). ``verify RUN_ID`` walks a run's hash chain (exit 1 on the first
edited, deleted, reordered or appended event, or an approval record the chain contradicts).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from codex_orchestrator.errors import RequestError
from codex_orchestrator.records.paths import EVENTS_FILENAME, find_run_dir, validate_task_id

EXIT_OK = 0
EXIT_MISMATCH = 1
COMMANDS = ("metrics", "verify")


def add_parser(sub: Any) -> None:
    """Add ``metrics`` and ``verify`` to the CLI's subcommands."""
    mt = sub.add_parser(
        "metrics",
        help="show a task's metrics snapshots, or rebuild them from the event logs (--recompute)",
        description="The task's snapshots (docs/metrics.md): .runs/<task>/metrics.json, metrics/post-rollout.json, "
        "metrics/completeness.json, state.json and out/<task>/metrics/mttr-delta.json.",
    )
    mt.add_argument("task", help="the task id")
    mt.add_argument("--runs-dir", type=Path, default=None, help="where the runs are (default ./.runs)")
    mt.add_argument(
        "--recompute",
        action="store_true",
        help="rebuild every snapshot from the runs' event logs alone and compare with the files (exit 1 if any "
        "differs)",
    )
    mt.add_argument(
        "--write", action="store_true", help="with --recompute: replace the files with the rebuilt ones"
    )
    mt.add_argument(
        "--rollout-at",
        metavar="TIME",
        help="the rollout marker (ISO 8601), instead of the first gated run's start",
    )
    mt.add_argument(
        "--baseline",
        metavar="FROM..TO",
        help="the MTTR baseline window (ISO 8601 times; either side may be empty), instead of 'before the "
        "rollout marker'",
    )
    mt.add_argument("--json", action="store_true", help="print the snapshots as one JSON object")

    vf = sub.add_parser(
        "verify",
        help="check a run's tamper-evident records: OK, or the first edited/deleted/reordered/appended event",
    )
    vf.add_argument("run_id", help="the run to verify")
    vf.add_argument(
        "--runs-dir", type=Path, default=None, help="where the run's records are (default ./.runs)"
    )
    vf.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    return _metrics(args) if args.command == "metrics" else _verify(args)


def _runs_dir(value: Path | None) -> Path:
    return value if value is not None else Path.cwd() / ".runs"


def _metrics(args: argparse.Namespace) -> int:
    from codex_orchestrator.records import snapshots as snap

    paths = snap.SnapshotPaths(_runs_dir(args.runs_dir), validate_task_id(args.task))
    if not paths.task_dir.is_dir():
        raise RequestError(f"no task {args.task!r} under {paths.runs_dir}", field="task")
    if args.write and not args.recompute:
        raise RequestError("--write only goes with --recompute", field="--write")
    if args.rollout_at is not None or args.baseline is not None:
        if args.recompute:
            raise RequestError(
                "--recompute rebuilds with the recorded choices; change them without it", field="--recompute"
            )
        snap.save_config(paths.config, _choices(snap.load_config(paths.config), args))
        snap.write_snapshots(paths)
    if args.recompute:
        rows = snap.recompute(paths)
        if args.write:
            snap.write_recomputed(paths, rows)
        if args.json:
            print(
                json.dumps({name: {"path": str(p), "status": s} for name, p, s, _c in rows}, sort_keys=True)
            )
        else:
            for name, path, status, _content in rows:
                note = " (rewritten)" if args.write and status != "identical" else ""
                print(f"{status:<9} {name:<13} {path}{note}")
        return EXIT_OK if all(s == "identical" for _n, _p, s, _c in rows) else EXIT_MISMATCH
    documents = {name: _load(path) for name, path in paths.files().items()}
    if args.json:
        print(json.dumps(documents, sort_keys=True))
        return EXIT_OK
    for name, path in paths.files().items():
        print(f"{name:<13} {path}" + ("" if documents[name] is not None else "  (not written yet)"))
    aggregates = (documents["metrics"] or {}).get("aggregates") or {}
    if aggregates:
        print(
            f"runs {aggregates.get('runs')} · success rate {aggregates.get('success_rate')} · "
            f"MTTR {aggregates.get('mttr_ms')} ms over {aggregates.get('recovered')} recovered incident(s)"
        )
    return EXIT_OK


def _choices(config: Any, args: argparse.Namespace) -> Any:
    from codex_orchestrator.records.snapshots import SnapshotConfig, normalise_ts

    def stamp(value: str, option: str) -> str | None:
        if not value.strip():
            return None
        try:
            return normalise_ts(value)
        except ValueError:
            raise RequestError(f"not an ISO 8601 time: {value!r}", field=option) from None

    changes: dict[str, Any] = {}
    if args.rollout_at is not None:
        changes["rollout_at"] = stamp(args.rollout_at, "--rollout-at")
    if args.baseline is not None:
        start, sep, end = args.baseline.partition("..")
        if not sep:
            raise RequestError(f"expected FROM..TO, got {args.baseline!r}", field="--baseline")
        changes["baseline_from"] = stamp(start, "--baseline")
        changes["baseline_to"] = stamp(end, "--baseline")
    return SnapshotConfig.model_validate({**config.model_dump(), **changes})


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"error": f"{path} is not valid JSON: `metrics --recompute --write` rebuilds it"}


def _verify(args: argparse.Namespace) -> int:
    from codex_orchestrator.records.chain import verify_run

    run_dir = find_run_dir(_runs_dir(args.runs_dir), args.run_id, EVENTS_FILENAME)
    report = verify_run(run_dir, args.run_id)
    head = report.head
    if args.json:
        out = {
            "run_id": args.run_id,
            "ok": report.ok,
            "events": report.events,
            "head": None if head is None else head.model_dump(),
            "approvals": report.approvals,
            "torn_lines": report.torn_lines,
            "problem": None if report.problem is None else report.problem.as_dict(),
        }
        print(json.dumps(out, sort_keys=True))
    elif report.problem is None:
        anchor = (
            f"matches the manifest's chain head (seq {head.seq})"
            if head is not None
            else "no chain head recorded yet (the run has not finished): an extra last event would not show"
        )
        print(
            f"OK: run {args.run_id}: {report.events} events chained, {anchor}; {report.approvals} approval(s) match"
        )
    else:
        where = f" (line {report.problem.line})" if report.problem.line else ""
        print(f"TAMPERED: run {args.run_id}: {report.problem.kind}{where}: {report.problem.detail}")
    return EXIT_OK if report.ok else EXIT_MISMATCH
