"""The ``codex-orchestrator`` command line: run, exec, approve, show, schema, demo, spec-guard.

Exit codes: 0 succeeded · 1 run failed or was denied · 2 usage or validation error. ``exec`` returns the
command's own exit code when it ran, 124 when it timed out, 125 when it was denied, 127 when it could not start.
Prefect is imported only by commands that need it (``run``, ``approve``, ``demo``, ``exec`` under a pause).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codex_orchestrator import __version__, cli_evidence, cli_notify, cli_rules, cli_serve, cli_verify
from codex_orchestrator.errors import OrchestratorError, RequestError
from codex_orchestrator.run import EXIT_FAILED, EXIT_USAGE, Interrupted, interrupt_exit_code

EPILOG = """\
examples:
  codex-orchestrator run request.yaml                  run the four milestones of a request
  codex-orchestrator exec --json -- pytest -q          one tool call through the gate, JSON Lines out
  codex-orchestrator exec --ssh ci@build1:2222 -- make  the same on an SSH host
  codex-orchestrator approve RUN_ID --for-session      answer a pending approval
  codex-orchestrator approve RUN_ID --deny --reason "not on main"
"""


# How long `run`, `demo` and `exec` under a pause wait for Prefect's embedded server to come up (seconds).
EMBEDDED_SERVER_STARTUP_S = "120"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # usage errors: one clear line and exit 2
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{self._option_hint(message)}\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # A mistyped subcommand or choice: name the closest one before listing them all.
        if action.choices is not None and value not in action.choices:
            from codex_orchestrator.suggest import did_you_mean

            hint = did_you_mean(str(value), [str(c) for c in action.choices])
            choices = ", ".join(repr(c) for c in action.choices)
            raise argparse.ArgumentError(action, f"invalid choice: {value!r}{hint}; choose from {choices}")
        super()._check_value(action, value)

    def _option_hint(self, message: str) -> str:
        """`` (did you mean '--policy'?)`` for the first unrecognised option, from every subcommand's options."""
        prefix = "unrecognized arguments: "
        if not message.startswith(prefix):
            return ""
        from codex_orchestrator.suggest import did_you_mean

        options: set[str] = set(self._option_string_actions)
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for parser in action.choices.values():
                    options.update(parser._option_string_actions)
        unknown = [arg for arg in message.removeprefix(prefix).split() if arg.startswith("-")]
        return did_you_mean(unknown[0].split("=")[0], options) if unknown else ""


def _choice_list(values: Sequence[str]) -> str:
    return ", ".join(values)


def build_parser() -> argparse.ArgumentParser:
    from codex_orchestrator.policy import ApprovalPolicy, Capability
    from codex_orchestrator.records.events import DEFAULT_OUTPUT_BUDGET_BYTES
    from codex_orchestrator.sandbox import SandboxMode

    parser = _Parser(
        prog="codex-orchestrator",
        description="Prefect-native orchestrator for autonomous coding-agent runs: every tool call passes one "
        "gate (approval → sandbox → attempt → retry) and lands in .runs/<task>/cli/<run-id>/.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        parser_class=_Parser,
        help="`codex-orchestrator COMMAND --help` for its options",
    )

    run = sub.add_parser("run", help="run a request file (YAML or JSON) as the four milestone flows")
    run.add_argument("request_file", type=Path, help="the request: see docs/requests.md")
    run.add_argument("--runs-dir", type=Path, help="where records go (default: <workspace>/.runs)")
    run.add_argument("--run-id", help="use this run id instead of a fresh one")
    run.add_argument("--json", action="store_true", help="print the run's events as JSON Lines on stdout")
    run.add_argument(
        "--no-prompt", action="store_true", help="never ask at the terminal; approvals wait for the UI/CLI"
    )

    ex = sub.add_parser(
        "exec",
        help="run one command through the gate (approval, sandbox, PTY, retry)",
        description="Run one tool call through the whole gate and record it like any run.",
        epilog="everything after -- is the command and its arguments",
    )
    policies = [p.value for p in ApprovalPolicy]
    caps = [c.value for c in Capability]
    ex.add_argument(
        "--cwd", type=Path, help="working directory (default: the workspace if given, else the current one)"
    )
    ex.add_argument(
        "--workspace", type=Path, help="workspace root: writable in the sandbox, holds .runs (default: --cwd)"
    )
    ex.add_argument("--task", default="exec", help="task id the run is filed under (default: exec)")
    ex.add_argument("--run-id", help="use this run id instead of a fresh one")
    ex.add_argument("--runs-dir", type=Path, help="where records go (default: <workspace>/.runs)")
    ex.add_argument("--policy", default="on-request", help=f"approval policy: {_choice_list(policies)}")
    ex.add_argument(
        "--profile",
        default="read,edit,run",
        help=f"granted capabilities, comma-separated: {_choice_list(caps)} (default: read,edit,run)",
    )
    ex.add_argument(
        "--needs",
        default="",
        help="capabilities the command needs on top of what it is classified as needing (e.g. network)",
    )
    ex.add_argument(
        "--sandbox",
        default="workspace-write",
        help=f"sandbox mode: {_choice_list([m.value for m in SandboxMode])}",
    )
    ex.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="kill the command's process tree after this long (default 600)",
    )
    ex.add_argument(
        "--retries", type=int, default=0, help="extra attempts for retryable failures (default 0)"
    )
    ex.add_argument("--ask", action="store_true", help="ask for approval even when the policy would not")
    ex.add_argument(
        "--approver",
        default="auto",
        choices=["auto", "terminal", "prefect", "none"],
        help="who answers approvals: auto = the terminal if stdin is a TTY, else a Prefect pause "
        "when the call needs approval up front; prefect = always pause (answer in the UI or with "
        "`approve`); none = deny",
    )
    ex.add_argument(
        "--approval-timeout",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="an approval still unanswered after this long counts as a denial (default 3600)",
    )
    ex.add_argument("--ssh", metavar="[USER@]HOST[:PORT]", help="run on this SSH host")
    ex.add_argument("--identity-file", type=Path, help="SSH private key")
    ex.add_argument("--known-hosts", type=Path, help="known_hosts file (default ~/.ssh/known_hosts)")
    ex.add_argument("--trust-on-first-use", action="store_true", help="accept and record an unknown host key")
    ex.add_argument("--host", metavar="BLOCK_NAME", help="run on the SSH host saved as this Prefect block")
    ex.add_argument(
        "--stdin",
        action="store_true",
        help="forward this process's stdin to the command (automatic when stdin is a TTY)",
    )
    ex.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra environment")
    ex.add_argument(
        "--secret-env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass this environment variable through and redact its value from all records",
    )
    ex.add_argument(
        "--no-gate", action="store_true", help="feature flag: run directly (recorded not-required)"
    )
    ex.add_argument(
        "--event-output-budget",
        type=int,
        default=DEFAULT_OUTPUT_BUDGET_BYTES,
        metavar="BYTES",
        help="output kept in events.jsonl (head and tail; the rest is counted in an output.omitted event)",
    )
    ex.add_argument("--json", action="store_true", help="JSON Lines on stdout: begin, output, ..., summary")
    ex.add_argument("argv", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")

    rs = sub.add_parser("resume", help="continue a run that was killed: succeeded calls are not run again")
    rs.add_argument("run_id", help="the run to re-enter")
    rs.add_argument("--runs-dir", type=Path, help="where the run's records are (default ./.runs)")
    rs.add_argument("--json", action="store_true", help="print the run's events as JSON Lines on stdout")
    rs.add_argument(
        "--no-prompt", action="store_true", help="never ask at the terminal; approvals wait for the UI/CLI"
    )

    runs = sub.add_parser("runs", help="list the runs under a runs directory, newest first")
    runs.add_argument("--runs-dir", type=Path, help="where records are (default ./.runs)")
    runs.add_argument("--json", action="store_true", help="one JSON object per run")

    aps = sub.add_parser("approvals", help="list pending approvals (of one run, or of every run)")
    aps.add_argument("run_id", nargs="?", help="only this run's")
    aps.add_argument("--runs-dir", type=Path, help="where records are (default ./.runs)")
    aps.add_argument("--json", action="store_true", help="one JSON object per approval")

    mf = sub.add_parser("manifest", help="print a run's manifest, or rebuild it from the run's records")
    mf.add_argument("run_id", help="the run")
    mf.add_argument("--runs-dir", type=Path, help="where records are (default ./.runs)")
    mf.add_argument(
        "--rebuild", action="store_true", help="fold manifest.json afresh from the run's record files"
    )

    ap = sub.add_parser("approve", help="answer the pending approval of a run (approves unless --deny)")
    ap.add_argument(
        "run_id", help="the run waiting for an answer (printed by `run`/`exec`, or see `approvals`)"
    )
    ap.add_argument(
        "--approval", metavar="ID", help="which pending approval (needed when several are pending)"
    )
    ap.add_argument("--deny", action="store_true", help="deny instead of approving")
    ap.add_argument("--for-session", action="store_true", help="approve this call for the rest of the run")
    ap.add_argument(
        "--remember",
        action="store_true",
        help="approve, and append an allow rule for the call to the rules file (.codex/rules/default.rules): "
        "matching calls run unasked from now on",
    )
    ap.add_argument("--reason", default=None, help="recorded with the answer (secrets of the run redacted)")
    ap.add_argument(
        "--reviewer", default=None, help="your name, recorded with the answer (default: login name)"
    )
    cli_verify.add_review_options(ap)
    ap.add_argument(
        "--channel", default="cli", choices=["cli", "sdk"], help=argparse.SUPPRESS
    )  # set by the SDK
    ap.add_argument(
        "--runs-dir", type=Path, default=None, help="where the run's records are (default ./.runs)"
    )

    show = sub.add_parser("show", help="print a run's manifest summary")
    show.add_argument("run_id", help="the run to show")
    show.add_argument(
        "--runs-dir", type=Path, default=None, help="where the run's records are (default ./.runs)"
    )
    show.add_argument("--json", action="store_true", help="print the manifest itself")

    schema = sub.add_parser("schema", help="write or check schemas/*.schema.json from the models")
    schema.add_argument(
        "--out", type=Path, default=Path("schemas"), help="directory of the schema files (default schemas)"
    )
    schema.add_argument("--check", action="store_true", help="exit 1 when the files are stale")

    cli_verify.add_parser(sub)
    demo = sub.add_parser("demo", help="run the demo: a scripted agent edits a scratch repository")
    demo.add_argument("--dir", type=Path, default=Path(".demo"), help="scratch directory (default .demo)")
    cli_evidence.add_parser(sub)  # metrics, verify
    cli_notify.add_parser(sub)  # automation
    cli_serve.add_parser(sub)  # serve, task-worker
    cli_rules.add_parser(sub)  # rules check, rules test
    return parser


def _interrupt_on_sigterm() -> None:
    """SIGTERM takes the same road as Ctrl-C: the run is recorded interrupted and process trees are ended.
    (Commands that run flows replace this with flows/interrupt.py's immediate shutdown.)"""

    def handler(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def main(argv: Sequence[str] | None = None) -> int:
    _interrupt_on_sigterm()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        handler = {
            "run": _cmd_run,
            "exec": _cmd_exec,
            "approve": _cmd_approve,
            "resume": _cmd_resume,
            "runs": _cmd_runs,
            "approvals": _cmd_approvals,
            "manifest": _cmd_manifest,
            "show": _cmd_show,
            "schema": _cmd_schema,
            "demo": _cmd_demo,
            **dict.fromkeys(cli_evidence.COMMANDS, cli_evidence.run),
            "automation": cli_notify.run,
            "spec-guard": cli_verify.run,
            "serve": cli_serve.run,
            "task-worker": cli_serve.run_task_worker,
            "rules": cli_rules.run,
        }[args.command]
        return handler(args)
    except RequestError as exc:
        print(f"codex-orchestrator {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OrchestratorError as exc:
        print(f"codex-orchestrator {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        print(f"codex-orchestrator {args.command}: interrupted", file=sys.stderr)
        return interrupt_exit_code(exc)


def freeze_startup_heap() -> None:
    """Move everything imported so far out of the collector's reach before a run starts.

    A long run keeps every tool call's record; CPython's full collections then walk the whole heap, mostly
    Prefect's and pydantic's import-time objects, and made the per-call record cost grow with run length
    (bench/gate_overhead.py: 10k/100 ratio 1.4 with them, 1.1-1.2 frozen).
    """
    gc.freeze()


def _prefect_env() -> None:
    # The embedded server's telemetry heartbeat only adds SQLite lock noise; users can still opt in.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The embedded server gets 20 s to start by default; on a busy two-core machine its import and migrations
    # took longer and the run died with "Timed out while attempting to connect to ephemeral Prefect API server".
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EMBEDDED_SERVER_STARTUP_S)
    # Prefect warns "Failed to create the Prefect home directory" when PREFECT_HOME's parent is missing (the
    # Makefile points it into .demo/, which the first demo has yet to create): create it before importing.
    home = os.environ.get("PREFECT_HOME")
    if home:
        with contextlib.suppress(OSError):  # Prefect's own warning then says what is wrong
            Path(home).expanduser().mkdir(parents=True, exist_ok=True)


def _json_printer() -> Any:
    from codex_orchestrator.stdout_pipe import StdoutPipe

    return StdoutPipe().line


# -- run ------------------------------------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from codex_orchestrator.request import load_request

    request = load_request(args.request_file)  # validation errors: exit 2 before anything is written
    if args.run_id:
        from codex_orchestrator.records.paths import RUNS_DIRNAME, RunPaths, ensure_new_run, validate_run_id

        runs_root = args.runs_dir or Path(request.workspace) / RUNS_DIRNAME
        # Before Prefect starts: an existing run's records are never touched, and the refusal is one line.
        ensure_new_run(RunPaths(runs_root, request.task, validate_run_id(args.run_id)))
    return _start_run(args, args.request_file, run_id=args.run_id, runs_dir=args.runs_dir, resume=False)


def _start_run(
    args: argparse.Namespace, request_file: Path, *, run_id: str | None, runs_dir: Path | None, resume: bool
) -> int:
    from codex_orchestrator.terminal import stdin_is_tty

    _prefect_env()
    import flows.autonomy  # noqa: F401  (import Prefect and the flows before freezing the heap)
    from flows import interrupt
    from flows.runner import run_request, terminal_review, terminal_reviewer
    from flows.server import start_embedded_server

    start_embedded_server()

    interrupt.install()
    freeze_startup_heap()
    reviewer = terminal_reviewer if (stdin_is_tty() and not args.no_prompt) else None
    if reviewer is None and not args.json:
        print(
            "approvals, if any, are answered in the Prefect UI or with `codex-orchestrator approve RUN_ID`",
            file=sys.stderr,
        )
    code, manifest = run_request(
        request_file,
        run_id=run_id,
        runs_dir=runs_dir,
        resume=resume,
        reviewer=reviewer,
        on_line=_json_printer() if args.json else None,
        review_answerer=terminal_review if reviewer is not None else None,
    )
    print(f"manifest: {manifest}", file=sys.stderr)
    return code


def _cmd_resume(args: argparse.Namespace) -> int:
    from codex_orchestrator.records.paths import find_run_dir
    from codex_orchestrator.records.store import REQUEST_FILENAME, RUN_FILENAME

    run_dir = find_run_dir(_runs_dir(args.runs_dir), args.run_id, RUN_FILENAME)
    request_file = run_dir / REQUEST_FILENAME
    if not request_file.exists():
        raise RequestError(f"run {args.run_id!r} is an exec run or has no request to resume", field="run_id")
    from codex_orchestrator.request import load_request

    load_request(request_file)  # as `run` does: a bad request is refused before Prefect starts
    return _start_run(args, request_file, run_id=args.run_id, runs_dir=run_dir.parents[2], resume=True)


# -- exec -----------------------------------------------------------------------------------------------------
def _cmd_exec(args: argparse.Namespace) -> int:
    from codex_orchestrator.cli_exec import run_exec_command

    return run_exec_command(args)


# -- approve / show -------------------------------------------------------------------------------------------
def _runs_dir(value: Path | None) -> Path:
    return value if value is not None else Path.cwd() / ".runs"


def _cmd_approve(args: argparse.Namespace) -> int:
    from codex_orchestrator.records.listing import choose_pending, run_store

    if sum((args.deny, args.for_session, args.remember)) > 1:
        raise RequestError("--deny, --for-session and --remember exclude each other", field="--remember")
    try:
        store = run_store(_runs_dir(args.runs_dir), args.run_id)
    except RequestError:
        if args.runs_dir is not None or not os.environ.get("PREFECT_API_URL"):
            raise
        return _approve_through_prefect(args)  # the records are elsewhere: the Prefect API knows the pause
    if (answered := cli_verify.answer_pending_review(args, store, _prefect_env)) is not None:
        return answered
    pending, api_url = choose_pending(store, args.approval)
    decision = _decision(args)
    _prefect_env()
    from codex_orchestrator.redact import redactor_for_env
    from codex_orchestrator.terminal import login_name
    from tasks.approval import answer_approval

    # The values of the run's secret variables, as far as this shell has them: a reason must not carry one.
    redact = redactor_for_env(store.read_run().request.get("secret_env"))
    answer_approval(
        pending.flow_run_id or "",
        decision,
        reason=args.reason,
        reviewer=args.reviewer or login_name(),
        answered_by=args.channel,
        api_url=api_url,
        redact=redact,
    )
    print(f"{decision.value}: approval {pending.approval_id} of run {args.run_id} ({pending.reason})")
    return 0


def _decision(args: argparse.Namespace) -> Any:
    from codex_orchestrator.approvals import Decision

    if args.deny:
        return Decision.DENY
    if getattr(args, "remember", False):
        return Decision.APPROVE_AND_REMEMBER
    return Decision.APPROVE_FOR_SESSION if args.for_session else Decision.APPROVE


def _approve_through_prefect(args: argparse.Namespace) -> int:
    """``approve`` for a run whose records this machine does not have: find its paused approval flow runs by
    their tags on the configured Prefect API (PREFECT_API_URL)."""
    _prefect_env()
    from codex_orchestrator.terminal import login_name
    from tasks.approval import answer_approval, paused_approvals

    paused = paused_approvals(args.run_id)
    if args.approval is not None:
        paused = [p for p in paused if p[0] == args.approval]
    if not paused:
        raise RequestError(
            f"no run {args.run_id!r} here (./.runs) and no approval of it paused on {os.environ['PREFECT_API_URL']}",
            field="run_id",
        )
    if len(paused) > 1:
        listed = ", ".join(a for a, _ in paused)
        raise RequestError(
            f"run {args.run_id} has {len(paused)} paused approvals, pick one with --approval: {listed}"
        )
    approval_id, flow_run_id = paused[0]
    decision = _decision(args)
    answer_approval(
        flow_run_id,
        decision,
        reason=args.reason,
        reviewer=args.reviewer or login_name(),
        answered_by=args.channel,
    )
    print(f"{decision.value}: approval {approval_id} of run {args.run_id} (found through the Prefect API)")
    return 0


def _cmd_approvals(args: argparse.Namespace) -> int:
    from codex_orchestrator.records.listing import pending_approvals

    found = pending_approvals(_runs_dir(args.runs_dir), args.run_id)
    for record in found:
        if args.json:
            print(record.model_dump_json())
        else:
            print(f"{record.run_id}  {record.approval_id}  step {record.step}  {record.reason}")
    reviews = cli_verify.waiting_review_lines(_runs_dir(args.runs_dir), args.run_id, as_json=args.json)
    for line in reviews:
        print(line)
    if not found and not reviews and not args.json:
        print("no pending approvals", file=sys.stderr)
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    import json

    from codex_orchestrator.records.listing import list_runs

    for row in list_runs(_runs_dir(args.runs_dir)):
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{row['run_id']}  {row['task_id']:<20} {row['status']:<18} {row['created_at']}")
    return 0


def _cmd_manifest(args: argparse.Namespace) -> int:
    from codex_orchestrator.records.listing import run_store
    from codex_orchestrator.records.store import ManifestFolder

    folder = ManifestFolder(run_store(_runs_dir(args.runs_dir), args.run_id))
    data = (folder.write() if args.rebuild else None) or folder.store.paths.manifest.read_bytes()
    sys.stdout.write(data.decode("utf-8") + "\n")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from codex_orchestrator.records.manifest import load_manifest
    from codex_orchestrator.records.paths import MANIFEST_FILENAME, find_run_dir
    from codex_orchestrator.run import effective_status

    run_dir = find_run_dir(_runs_dir(args.runs_dir), args.run_id)
    path = run_dir / MANIFEST_FILENAME
    if args.json:
        sys.stdout.write(path.read_text(encoding="utf-8") + "\n")
        return 0
    m = load_manifest(path)
    print(f"run {m.run_id} · task {m.task_id} · {effective_status(m)} (exit {m.exit_code})")
    for ms in m.milestones:
        print(f"  milestone {ms.name:<13} {ms.status}")
    for c in m.tool_calls:
        print(
            f"  {c.id} {c.step:<20} {c.status:<10} exit={c.exit_code} attempts={len(c.attempts)} "
            f"approval={c.approval_source} sandbox={c.sandbox.state}"
        )
    for pending in m.pending_approvals:
        print(f"  waiting: {pending.approval_id} — {pending.reason}")
    for line in cli_verify.show_lines(m):
        print(line)
    return 0


# -- schema / demo --------------------------------------------------------------------------------------------
def _cmd_schema(args: argparse.Namespace) -> int:
    from codex_orchestrator.schemas import check_schemas, write_schemas

    if args.check:
        stale = check_schemas(args.out)
        for name in stale:
            print(f"stale: {args.out / name} (run `codex-orchestrator schema`)", file=sys.stderr)
        return EXIT_FAILED if stale else 0
    for path in write_schemas(args.out):
        print(f"wrote {path}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    _prefect_env()
    # The embedded server's own log (SQLite "database is locked" retries of its background services, with
    # SQLAlchemy tracebacks) is not what a person watching the demo needs; a real failure still ends the run
    # with a message. PREFECT_SERVER_LOGGING_LEVEL=ERROR (or lower) shows it again.
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    import flows.autonomy  # noqa: F401
    from flows import interrupt
    from flows.demo import run_demo
    from flows.server import start_embedded_server

    start_embedded_server()

    interrupt.install()
    freeze_startup_heap()
    return run_demo(args.dir)


if __name__ == "__main__":
    sys.exit(main())
