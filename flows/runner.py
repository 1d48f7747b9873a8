"""Running a request in this process on Prefect, with the answerers the CLI attaches (terminal, reviewer, JSON).

Whatever process runs the calls, this process follows the run's event log: ``--json`` prints it and a
reviewer answers each approval as it appears, through the same public API the UI and ``approve`` use.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from codex_orchestrator.approvals import ApprovalRequest, Decision, flow_run_url, pause_notice
from codex_orchestrator.execute import read_secrets
from codex_orchestrator.records.manifest import ApprovalRecord, load_manifest
from codex_orchestrator.records.paths import RUNS_DIRNAME, RunPaths, new_run_id, validate_run_id
from codex_orchestrator.records.store import RunStore
from codex_orchestrator.records.tail import LogFollower
from codex_orchestrator.redact import Redactor
from codex_orchestrator.request import load_request
from codex_orchestrator.run import EXIT_FAILED
from codex_orchestrator.terminal import login_name, prompt_decision
from flows.autonomy import run_ref
from tasks.approval import answer_approval


@dataclass(frozen=True)
class AnswerVia:
    """How a reviewer in this process answers: the run's Prefect API, and a redactor knowing its secrets."""

    api_url: str | None
    redact: Redactor


# Who answers approvals raised by a run started from the CLI: told the record, the question and the way.
Reviewer = Callable[[ApprovalRecord, ApprovalRequest, AnswerVia], None]
# Who answers the run's review (verification) from this process: told the run's records, its flow run, the way.
ReviewAnswerer = Callable[[RunStore, str, AnswerVia], None]


def terminal_review(store: RunStore, flow_run_id: str, where: AnswerVia) -> None:
    """Show the review at this terminal and answer it through the same API ``approve`` uses."""
    from rich.console import Console

    from codex_orchestrator.verification.review import package_from_state, prompt_review
    from tasks.review import answer_review

    verdict, comments = prompt_review(
        package_from_state(store.read_run()), stdin=sys.stdin, console=Console(stderr=True)
    )
    answer_review(
        flow_run_id,
        verdict,
        comments=comments,
        reviewer=login_name(),
        answered_by="terminal",
        api_url=where.api_url,
        redact=where.redact,
    )


def terminal_reviewer(record: ApprovalRecord, request: ApprovalRequest, where: AnswerVia) -> None:
    """Ask the person at this terminal, then answer through the same API the UI/CLI use."""
    answer = prompt_decision(request)
    answer_approval(
        record.flow_run_id or "",
        answer.decision,
        reason=answer.reason,
        reviewer=login_name(),
        answered_by="terminal",
        api_url=where.api_url,
        redact=where.redact,
    )


def auto_reviewer(decision: Decision, say: Callable[[str], None]) -> Reviewer:
    """A scripted reviewer (the demo without a TTY): answers through the public API and says so."""

    def review(record: ApprovalRecord, _request: ApprovalRequest, where: AnswerVia) -> None:
        say(
            f"no TTY: answering approval {record.approval_id} ({record.reason}) with '{decision.value}' through "
            f"the public approval API, as `codex-orchestrator approve {record.run_id}` would"
        )
        answer_approval(
            record.flow_run_id or "",
            decision,
            reason="scripted reviewer (no TTY)",
            answered_by="auto-reviewer",
            api_url=where.api_url,
            redact=where.redact,
        )

    return review


def _ui_url() -> str | None:
    from prefect.settings import PREFECT_UI_URL

    return str(PREFECT_UI_URL.value() or "") or None


class _Dispatcher:
    """Turns followed event lines into printed JSON and reviewer calls (each approval in its own thread)."""

    def __init__(
        self,
        store: RunStore,
        reviewer: Reviewer | None,
        on_line: Callable[[str], None] | None,
        say: Callable[[str], None],
        review_answerer: ReviewAnswerer | None = None,
    ) -> None:
        self.store = store
        self.review_answerer = review_answerer
        self.reviewer = reviewer
        self.on_line = on_line
        self.say = say
        self.threads: list[threading.Thread] = []

    def __call__(self, line: str) -> None:
        if self.on_line is not None:
            self.on_line(line)
        if '"review.requested"' in line:
            self._review(json.loads(line))
            return
        if '"approval.requested"' not in line:
            return
        event = json.loads(line)
        if not event.get("flow_run_id"):
            return
        record = self.store.read_approval(event["approval_id"])
        if record is None:
            return
        if self.on_line is None:  # human mode: say what waits and exactly how to answer it
            api_url = self.store.read_run().prefect.api_url
            self.say(pause_notice(record.to_request(), flow_run_url(api_url, record.flow_run_id, _ui_url())))
        if self.reviewer is None:
            return
        reviewer = self.reviewer

        def answer() -> None:
            state = self.store.read_run()
            names = [str(n) for n in state.request.get("secret_env") or []]
            where = AnswerVia(state.prefect.api_url, Redactor(read_secrets(names).values()))
            try:
                reviewer(record, record.to_request(), where)
            except Exception as exc:  # the run goes on waiting; the UI/CLI can still answer
                self.say(f"could not answer approval {record.approval_id}: {exc}")

        thread = threading.Thread(target=answer, name=f"reviewer-{record.approval_id}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def _review(self, event: dict[str, object]) -> None:
        flow_run_id = str(event.get("flow_run_id") or "")
        if not flow_run_id:
            return
        state = self.store.read_run()
        if self.on_line is None:  # human mode: say what waits and exactly how to answer it
            skip = " [--skip]" if event.get("policy") != "required" else ""
            url = flow_run_url(state.prefect.api_url, flow_run_id, _ui_url())
            self.say(
                f"waiting for the review of run {state.run_id}:\n  answer:  codex-orchestrator approve "
                f"{state.run_id} [--request-changes --comment TEXT]{skip}"
                + (f"\n  or in the Prefect UI: {url}" if url else "")
            )
        if self.review_answerer is None:
            return
        answerer = self.review_answerer
        names = [str(n) for n in state.request.get("secret_env") or []]
        where = AnswerVia(state.prefect.api_url, Redactor(read_secrets(names).values()))

        def answer() -> None:
            try:
                answerer(self.store, flow_run_id, where)
            except Exception as exc:  # the run goes on waiting; the UI/CLI can still answer
                self.say(f"could not answer the review: {exc}")

        thread = threading.Thread(target=answer, name="review-answerer", daemon=True)
        self.threads.append(thread)
        thread.start()


def run_request(
    request_file: Path,
    *,
    run_id: str | None = None,
    runs_dir: Path | None = None,
    resume: bool = False,
    reviewer: Reviewer | None = None,
    on_line: Callable[[str], None] | None = None,
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
    review_answerer: ReviewAnswerer | None = None,
) -> tuple[int, Path]:
    """Run the autonomy flow here; returns (exit code, manifest path)."""
    from codex_orchestrator.telemetry import process_telemetry
    from flows.autonomy import autonomy  # imports Prefect: only when a run is really started
    from tasks.log_hygiene import quiet_pause_notices_on_console

    process_telemetry()  # before the flow starts, so that Prefect's own span of it is recorded too

    request = load_request(request_file)
    ref = run_ref(request, validate_run_id(run_id or new_run_id()), str(runs_dir) if runs_dir else None)
    store = RunStore(ref)
    say(f"run {ref.run_id}: records in {store.run_dir}")
    if on_line is None:  # human mode: the dispatcher says each pause's notice; Prefect's console need not
        quiet_pause_notices_on_console()
    follower = LogFollower(
        store.paths.events, _Dispatcher(store, reviewer, on_line, say, review_answerer)
    ).start()
    try:
        autonomy(
            request_path=str(request_file.resolve()),
            run_id=ref.run_id,
            runs_dir=ref.runs_dir,
            resume=resume,
            return_state=True,
        )
    finally:
        follower.stop()
    manifest_path = RunPaths(Path(ref.runs_dir), ref.task_id, ref.run_id).manifest
    if not manifest_path.exists():
        return EXIT_FAILED, manifest_path
    manifest = load_manifest(manifest_path)
    return (manifest.exit_code if manifest.exit_code is not None else EXIT_FAILED), manifest_path


__all__ = [
    "RUNS_DIRNAME",
    "ReviewAnswerer",
    "Reviewer",
    "auto_reviewer",
    "run_request",
    "terminal_review",
    "terminal_reviewer",
]
