"""The command line of verification: ``spec-guard`` on its own, and ``approve``'s answers to a waiting review
(``--request-changes --comment TEXT``, ``--skip``). Wired into cli.py with ``add_parser`` / ``run`` /
``add_review_options`` / ``answer_pending_review``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codex_orchestrator.errors import RequestError
from codex_orchestrator.records.store import RunStore
from codex_orchestrator.run import EXIT_FAILED

REVIEW_ID = "review"


# -- spec-guard ----------------------------------------------------------------------------------------------
def add_parser(sub: Any) -> None:
    sg = sub.add_parser(
        "spec-guard",
        help="check that changed code comes with a changed spec/task document and that specs were reviewed "
        "recently (exit 1 on a finding, unless --dry-run)",
    )
    sg.add_argument("--base", metavar="REV", help="measure the change from this revision (default HEAD)")
    sg.add_argument("--dry-run", action="store_true", help="report findings but exit 0")
    sg.add_argument(
        "--workspace", type=Path, default=None, help="the repository (default: the current directory)"
    )
    sg.add_argument(
        "--request",
        type=Path,
        default=None,
        help="take the rules and paths from this request file's verification.spec_guard (default: the "
        "documented defaults)",
    )
    sg.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from codex_orchestrator.verification.errors import GitError
    from codex_orchestrator.verification.settings import SpecGuardSettings
    from codex_orchestrator.verification.spec_guard import check, finding_lines

    settings = SpecGuardSettings()
    workspace = args.workspace
    if args.request is not None:
        from codex_orchestrator.request import load_request

        request = load_request(args.request)
        settings = request.verification.spec_guard
        workspace = workspace or Path(request.workspace)
    workspace = (workspace or Path.cwd()).resolve()
    if not workspace.is_dir():
        raise RequestError(f"{workspace} is not a directory", field="--workspace")
    try:
        record = check(workspace, args.base, settings, today=datetime.now(UTC).date())
    except GitError as exc:
        if exc.not_a_repository:
            raise RequestError(f"{workspace} is not a git repository", field="--workspace") from exc
        if args.base is not None:
            raise RequestError(f"unknown revision {args.base!r} in {workspace}", field="--base") from exc
        raise RequestError(f"cannot read the change in {workspace}: {exc}", field="--workspace") from exc
    if args.json:
        print(json.dumps({**record.model_dump(mode="json"), "dry_run": args.dry_run}))
    else:
        for line in finding_lines(record):
            print(line)
        base = (record.base or "")[:12]
        print(
            f"spec-guard: {len(record.findings)} finding(s) since {args.base or 'HEAD'} ({base}); "
            f"{len(record.code_files)} code and {len(record.spec_files)} spec file(s) changed"
            + (" (dry run)" if args.dry_run and record.findings else ""),
            file=sys.stderr,
        )
    return 0 if args.dry_run or not record.findings else EXIT_FAILED


def show_lines(manifest: Any) -> list[str]:
    """``show``'s lines for verification: each guardrail's result and the review (a ``Manifest``)."""
    lines = [
        f"  guardrail {g.name:<20} {g.result:<8} {'required' if g.required else 'advisory'}"
        + (f" — {g.detail}" if g.detail and g.result != "passed" else "")
        for g in manifest.guardrails
    ]
    review = manifest.review
    if review is not None and review.status == "pending":
        lines.append(f"  waiting: review (policy {review.policy}) — `approve {manifest.run_id}` answers it")
    elif review is not None:
        lines.append(
            f"  review {review.verdict} (source {review.source}, by {review.by or '-'})"
            + (f" — {review.comments}" if review.comments else "")
        )
    return lines


def waiting_review_lines(runs_dir: Path, run_id: str | None, *, as_json: bool) -> list[str]:
    """Reviews waiting for an answer, as ``approvals`` lists them beside tool-call approvals."""
    from codex_orchestrator.records.listing import list_runs, run_store
    from codex_orchestrator.run import FINAL_RUN_STATUSES

    ids = [run_id] if run_id is not None else [str(r["run_id"]) for r in list_runs(runs_dir)]
    lines: list[str] = []
    for rid in ids:
        state = run_store(runs_dir, rid).read_run()
        review = state.review
        if review is None or review.status != "pending" or state.status in FINAL_RUN_STATUSES:
            continue
        if as_json:
            row = {
                "run_id": rid,
                "approval_id": REVIEW_ID,
                "policy": review.policy,
                "flow_run_id": review.flow_run_id,
            }
            lines.append(json.dumps(row))
        else:
            lines.append(f"{rid}  {REVIEW_ID}  the review before hand-off (policy {review.policy})")
    return lines


# -- approve: the review ---------------------------------------------------------------------------------------
def add_review_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--request-changes",
        action="store_true",
        help="answer a waiting review: changes requested (say what with --comment); the run ends "
        "changes-requested",
    )
    ap.add_argument(
        "--skip", action="store_true", help="answer a waiting review: skip it (where its policy allows)"
    )
    ap.add_argument("--comment", default=None, help="the review's comments (secrets of the run redacted)")


def answer_pending_review(
    args: argparse.Namespace, store: RunStore, prefect_env: Callable[[], None]
) -> int | None:
    """Answer the run's waiting review, if ``approve`` is about it; None: it is about a tool-call approval.
    ``prefect_env`` prepares this process to talk to Prefect (cli.py's)."""
    from codex_orchestrator.records.listing import live_pending

    state = store.read_run()
    review = state.review
    waiting = review is not None and review.status == "pending" and bool(review.flow_run_id)
    about_review = args.request_changes or args.skip or args.comment is not None or args.approval == REVIEW_ID
    if not waiting:
        if about_review:
            raise RequestError(
                f"run {store.ref.run_id} has no review waiting (status: {state.status})", field="run_id"
            )
        return None
    if not about_review and args.approval is not None:
        return None
    if not about_review and live_pending(store):
        return None  # a tool call's approval waits too: the flags say which is meant
    assert review is not None
    if args.deny or args.for_session or getattr(args, "remember", False):
        flag = "--deny" if args.deny else ("--for-session" if args.for_session else "--remember")
        raise RequestError(
            f"{flag} answers a tool-call approval; a review takes --request-changes [--comment TEXT] or --skip",
            field=flag,
        )
    if args.request_changes and args.skip:
        raise RequestError("--request-changes and --skip exclude each other", field="--skip")
    if args.skip and review.policy == "required":
        raise RequestError("review policy 'required' does not allow skipping", field="--skip")
    verdict = "request-changes" if args.request_changes else ("skip" if args.skip else "approve")
    from codex_orchestrator.redact import redactor_for_env
    from codex_orchestrator.terminal import login_name

    prefect_env()
    from tasks.review import answer_review

    redact = redactor_for_env(state.request.get("secret_env"))
    answer_review(
        review.flow_run_id or "",
        verdict,
        comments=args.comment,
        reviewer=args.reviewer or login_name(),
        answered_by=args.channel,
        api_url=state.prefect.api_url,
        redact=redact,
    )
    print(f"{verdict}: the review of run {store.ref.run_id}")
    return 0
