"""Running a request in this process on Prefect, with the answerers the CLI attaches (terminal, reviewer, JSON)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

from codex_orchestrator.approvals import ApprovalRequest, Decision
from codex_orchestrator.records.manifest import ApprovalRecord, load_manifest
from codex_orchestrator.records.paths import RUNS_DIRNAME, RunPaths, new_run_id, validate_run_id
from codex_orchestrator.request import RunRequest
from codex_orchestrator.run import EXIT_FAILED
from codex_orchestrator.terminal import login_name, prompt_decision
from tasks import context
from tasks.approval import answer_approval

# Who answers approvals raised by a run started from the CLI.
Reviewer = Callable[[context.LiveRun, ApprovalRecord, ApprovalRequest], None]


def terminal_reviewer(live: context.LiveRun, record: ApprovalRecord, request: ApprovalRequest) -> None:
    """Ask the person at this terminal, then answer through the same API the UI/CLI use."""
    answer = prompt_decision(request)
    answer_approval(
        record.flow_run_id or "",
        answer.decision,
        reason=answer.reason,
        reviewer=login_name(),
        answered_by="terminal",
        api_url=live.recorder.manifest.prefect.api_url,
        redact=live.recorder.redact,
    )


def auto_reviewer(decision: Decision, say: Callable[[str], None]) -> Reviewer:
    """A scripted reviewer (the demo without a TTY): answers through the public API and says so."""

    def review(live: context.LiveRun, record: ApprovalRecord, _request: ApprovalRequest) -> None:
        say(
            f"no TTY: answering approval {record.approval_id} ({record.reason}) with '{decision.value}' through "
            f"the public approval API, as `codex-orchestrator approve {live.recorder.run_id}` would"
        )
        answer_approval(
            record.flow_run_id or "",
            decision,
            reason="scripted reviewer (no TTY)",
            answered_by="auto-reviewer",
            api_url=live.recorder.manifest.prefect.api_url,
            redact=live.recorder.redact,
        )

    return review


def run_request(
    request: RunRequest,
    *,
    run_id: str | None = None,
    runs_dir: Path | None = None,
    reviewer: Reviewer | None = None,
    on_line: Callable[[str], None] | None = None,
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
) -> tuple[int, Path]:
    """Run the autonomy flow here; returns (exit code, manifest path)."""
    from flows.autonomy import autonomy  # imports Prefect: only when a run is really started

    run_id = validate_run_id(run_id or new_run_id())
    runs_root = runs_dir or Path(request.workspace) / RUNS_DIRNAME

    def attach(live: context.LiveRun) -> None:
        if live.recorder.run_id != run_id:
            return
        if on_line is not None:
            live.recorder.events.add_listener(lambda _event, line: on_line(line))
        if reviewer is not None:

            def on_pending(record: ApprovalRecord, request: ApprovalRequest) -> None:
                if not record.flow_run_id:
                    return

                def answer() -> None:
                    try:
                        reviewer(live, record, request)
                    except Exception as exc:  # the run goes on waiting; the UI/CLI can still answer
                        say(f"could not answer approval {record.approval_id}: {exc}")

                threading.Thread(target=answer, name=f"reviewer-{record.approval_id}", daemon=True).start()

            live.recorder.add_approval_listener(on_pending)
        say(f"run {run_id}: records in {live.recorder.paths.run_dir}")

    remove = context.on_run_registered(attach)
    try:
        autonomy(request, run_id=run_id, runs_dir=str(runs_root), return_state=True)
    finally:
        remove()
    manifest_path = RunPaths(runs_root, request.task, run_id).manifest
    if not manifest_path.exists():
        return EXIT_FAILED, manifest_path
    manifest = load_manifest(manifest_path)
    return (manifest.exit_code if manifest.exit_code is not None else EXIT_FAILED), manifest_path
