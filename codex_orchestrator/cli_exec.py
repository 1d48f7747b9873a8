"""``codex-orchestrator exec``: option parsing into ``ExecOptions``, the approver choice, human and JSON output."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any, cast

from codex_orchestrator.approvals import Approver, NoApprover
from codex_orchestrator.errors import RequestError
from codex_orchestrator.exec.backend import ExecBackend
from codex_orchestrator.exec.session import ExecSession
from codex_orchestrator.execcmd import (
    ATTACHMENTS,
    ExecOptions,
    LocalAttachments,
    call_input,
    may_ask_up_front,
    open_exec_run,
    run_exec,
)
from codex_orchestrator.execute import stdin_at_eof
from codex_orchestrator.policy import ApprovalPolicy, ToolKind, parse_profile
from codex_orchestrator.records import events as ev
from codex_orchestrator.records.paths import new_run_id, validate_run_id, validate_task_id
from codex_orchestrator.redact import looks_secret
from codex_orchestrator.sandbox import SandboxMode
from codex_orchestrator.status_lines import StatusLines
from codex_orchestrator.stdout_pipe import StdoutPipe
from codex_orchestrator.suggest import did_you_mean
from codex_orchestrator.terminal import TerminalApprover, stdin_is_tty


def _enum(kind: type[Any], value: str, option: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        values = [m.value for m in kind]
        hint = did_you_mean(value, values)
        raise RequestError(
            f"unknown value {value!r}{hint}", field=option, allowed=", ".join(values)
        ) from None


def _caps(value: str, option: str) -> frozenset[Any]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    try:
        return parse_profile(names)
    except ValueError as exc:
        raise RequestError(str(exc), field=option) from None


def options_from_args(args: argparse.Namespace) -> ExecOptions:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise RequestError("no command given: put it after --, e.g. `exec -- make test`", field="CMD")
    remote = bool(args.ssh or args.host)
    # Without --cwd a command runs in the workspace when one is named, else here. On an SSH host --cwd is the
    # remote directory; the local one only files the records (in the workspace, or here).
    cwd = (args.cwd if not remote else None) or args.workspace or Path.cwd()
    if not remote and not cwd.is_dir():
        raise RequestError(f"{cwd} does not exist or is not a directory", field="--cwd")
    workspace = args.workspace or cwd
    if not workspace.is_dir():
        raise RequestError(f"{workspace} does not exist or is not a directory", field="--workspace")
    if args.timeout <= 0:
        raise RequestError("must be a positive number of seconds", field="--timeout")
    if args.event_output_budget < 1024:
        raise RequestError("must be at least 1024 bytes", field="--event-output-budget")
    if args.retries < 0 or args.retries > 20:
        raise RequestError("must be between 0 and 20", field="--retries")
    env: dict[str, str] = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise RequestError(f"{item!r} is not NAME=VALUE", field="--env")
        env[name] = value
    secret_names = list(args.secret_env)
    for name in secret_names:
        if name not in os.environ:
            raise RequestError(f"environment variable {name} is not set", field="--secret-env")
    for name in [n for n in env if looks_secret(n)]:
        # A value given on the command line under a secret-looking name travels by name like --secret-env,
        # so it is redacted everywhere and never lands in a Prefect flow run's parameters.
        os.environ[name] = env.pop(name)
        secret_names.append(name)
    return ExecOptions(
        argv=tuple(argv),
        workspace=workspace,
        cwd=cwd,
        task_id=validate_task_id(args.task),
        run_id=validate_run_id(args.run_id) if args.run_id else new_run_id(),
        runs_dir=args.runs_dir,
        policy=_enum(ApprovalPolicy, args.policy, "--policy"),
        profile=_caps(args.profile, "--profile"),
        declared=_caps(args.needs, "--needs"),
        sandbox=_enum(SandboxMode, args.sandbox, "--sandbox"),
        timeout_s=args.timeout,
        retries=args.retries,
        env=env,
        approval_required=args.ask,
        gate_enabled=not args.no_gate,
        approval_timeout_s=args.approval_timeout,
        remote_cwd=str(args.cwd) if remote and args.cwd else None,
        kind=ToolKind.SHELL,
        secret_env=tuple(secret_names),
        event_output_budget=args.event_output_budget,
    )


def backend_from_args(args: argparse.Namespace) -> tuple[ExecBackend | None, tuple[str, ...]]:
    if args.ssh and args.host:
        raise RequestError("give either --ssh or --host, not both", field="--host")
    if not args.ssh and not args.host:
        return None, ()
    from codex_orchestrator.exec.ssh import SshBackend, SshTarget, parse_ssh_destination

    if args.host:
        target = _target_from_block(args.host)
    else:
        try:
            parsed = parse_ssh_destination(args.ssh)
        except ValueError as exc:
            raise RequestError(str(exc), field="--ssh") from None
        target = SshTarget(
            host=parsed.host,
            port=parsed.port,
            user=parsed.user,
            key_file=str(args.identity_file) if args.identity_file else None,
            known_hosts=str(args.known_hosts) if args.known_hosts else None,
            trust_on_first_use=args.trust_on_first_use,
        )
    if target.key_file and not Path(target.key_file).is_file():
        raise RequestError(f"{target.key_file} does not exist", field="--identity-file")
    return SshBackend(target), tuple(target.sandbox_command)


def _target_from_block(name: str) -> Any:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from blocks.ssh_host import SshHost

    try:
        block = cast(SshHost, SshHost.load(name))
    except ValueError as exc:
        raise RequestError(f"no SSH host block named {name!r} ({exc})", field="--host") from None
    return block.to_target()


def _needs_prefect(call: Any, approver: str, tty: bool, backend: ExecBackend | None) -> bool:
    if approver == "prefect":
        return True
    if approver != "auto" or tty:
        return False
    return may_ask_up_front(call, backend)


class _HumanOutput:
    """Live output to the terminal, a status line on stderr, and a one-line summary."""

    def __init__(self) -> None:
        self.status = StatusLines()
        self.out = StdoutPipe()

    def __call__(self, event: ev._Event, _line: str) -> None:
        say = self.status.print
        if isinstance(event, ev.Output):
            self.out.write(event.data)
        elif isinstance(event, ev.ToolCallStarted):
            say(("dim", f"▶ {event.command}  ({event.backend}, cwd {event.cwd})"))
        elif isinstance(event, ev.ApprovalResolved) and event.source != "not-required":
            say(("dim", f"approval: {event.outcome} ({event.source})"))
        elif isinstance(event, ev.RetryScheduled):
            say(("yellow", f"retrying in {event.delay_s:.2f}s: {event.reason}"))
        elif isinstance(event, ev.SandboxDenied):
            say(("yellow", f"sandbox blocked a {event.denial}: {event.evidence}"))
        elif isinstance(event, ev.Summary):
            colour = "green" if event.status == "succeeded" else "red"
            if event.status != "succeeded":
                # The cause first, on a line of its own: the manifest holds it too, but nobody should need it.
                say(("red", f"✗ {event.status}: {event.error or 'no cause recorded'}"))
            say(
                (colour, f"■ {event.status}"),
                (
                    "",
                    f" exit={event.exit_code} attempts={event.attempts} approval={event.approval_source} "
                    f"sandbox={event.sandbox_state} {event.duration_ms / 1000:.2f}s · {event.manifest}",
                ),
            )


def _stdin_pump(session: ExecSession) -> None:
    """Forward our stdin to the session; at EOF send the terminal's end-of-file (Ctrl-D)."""

    def pump() -> None:
        try:
            while True:
                data = os.read(sys.stdin.fileno(), 65536)
                if not data:
                    session.write(b"\x04")
                    return
                session.write(data)
        except OSError:
            return

    threading.Thread(target=pump, name=f"stdin-{session.id}", daemon=True).start()


def run_exec_command(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    backend, sandbox_prefix = backend_from_args(args)
    tty = stdin_is_tty()
    listener: Any
    if args.json:
        out = StdoutPipe()

        def listener(_event: ev._Event, line: str) -> None:
            out.write(line)
    else:
        listener = _HumanOutput()
    forward_stdin = args.stdin or (tty and not args.json)
    on_session = _stdin_pump if forward_stdin else stdin_at_eof

    approver: Approver
    if args.approver == "terminal" or (args.approver == "auto" and tty):
        if not tty:
            raise RequestError("stdin is not a terminal", field="--approver terminal")
        approver = TerminalApprover()
    elif args.approver == "none":
        approver = NoApprover("--approver none: approvals are denied")
    else:
        approver = NoApprover(
            "no approver attached (stdin is not a TTY and the call was not run under Prefect); "
            "rerun with --approver prefect to pause for an answer in the Prefect UI or `approve`"
        )

    call = call_input(options)
    attachments = LocalAttachments(
        listeners=[listener],
        on_session=on_session,
        backend=(backend, sandbox_prefix) if backend is not None else None,
    )
    from codex_orchestrator.cli import freeze_startup_heap

    if not _needs_prefect(call, args.approver, tty, backend):
        freeze_startup_heap()
        return run_exec(call, approver, attachments=attachments).exit_code

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows import interrupt
    from flows.exec_flow import exec_tool_call
    from flows.server import start_embedded_server

    start_embedded_server()
    interrupt.install()
    freeze_startup_heap()
    print(
        f"run {call.run.run_id} needs an approval: answer in the Prefect UI or with "
        f"`codex-orchestrator approve {call.run.run_id}`; waiting up to {options.approval_timeout_s} s "
        f"(--approval-timeout), or rerun with --policy never to fail at once instead",
        file=sys.stderr,
    )
    open_exec_run(call).close()  # the records hold the call; the flow run's parameters only name the run
    token = ATTACHMENTS.set(attachments)
    try:
        state = exec_tool_call(run=call.run, return_state=True)
    finally:
        ATTACHMENTS.reset(token)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return int(result)
