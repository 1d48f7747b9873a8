"""The blocking SDK: ``Client`` starts the CLI with ``subprocess``; reader threads feed each handle's event stream."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Generic, Self, Unpack

from codex_orchestrator.reaper import tie_to_this_process
from codex_orchestrator.sdk._shared import (
    APPROVE_TIMEOUT_S,
    KILL_GRACE_S,
    STREAM_DRAIN_S,
    ClientBase,
    Event,
    EventStream,
    ExecOptions,
    ExecSummary,
    HandleBase,
    Plan,
    RunSummary,
    S,
    SdkError,
    as_bytes,
    check_approved,
    exec_summary,
    no_stdin,
    run_summary,
)


class _Handle(HandleBase, Generic[S]):
    """A running CLI process. Reader threads drain stdout (events) and stderr so the CLI never blocks on us."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._stream = EventStream()
        self._cond = threading.Condition()
        launch = plan.launch
        try:
            self._proc = subprocess.Popen(
                launch.command,
                stdin=subprocess.PIPE if plan.stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=launch.env,
                cwd=launch.cwd,
            )
        except OSError as exc:
            raise SdkError(f"cannot start {launch.command[0]!r}: {exc.strerror}") from exc
        tie_to_this_process(
            self._proc.pid
        )  # the CLI child ends (recorded interrupted) when this process dies
        self._readers = [
            threading.Thread(target=self._read_stdout, name=f"sdk-stdout-{plan.run_id}", daemon=True),
            threading.Thread(target=self._read_stderr, name=f"sdk-stderr-{plan.run_id}", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        try:
            for raw in self._proc.stdout:
                with self._cond:
                    self._stream.feed(raw)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass  # the pipe was closed under us: the stream simply ends
        finally:
            with self._cond:
                self._stream.eof = True
                self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        try:
            while chunk := os.read(self._proc.stderr.fileno(), 65536):
                self._stream.feed_stderr(chunk)
        except (OSError, ValueError):
            pass

    @property
    def return_code(self) -> int | None:
        """The CLI's exit status once it has exited, else None."""
        return self._proc.poll()

    def events(self) -> Iterator[Event]:
        """Every event in ``seq`` order, from the first, as it arrives; ends when the CLI closes stdout."""
        index = 0
        while True:
            with self._cond:
                self._cond.wait_for(functools.partial(self._stream.ready, index))
                event = self._stream.take(index)
            if event is None:
                return
            index += 1
            yield event

    def wait(self, timeout_s: float | None = None) -> S:
        """Wait for the CLI to exit and return the summary; SdkError if it did not get that far."""
        try:
            return_code = self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise SdkError(
                f"{self._plan.what} {self.run_id} still running after {timeout_s} s (wait longer or kill() it)"
            ) from exc
        self._drain()
        return self._summarise(return_code)

    def _summarise(self, return_code: int) -> S:
        raise NotImplementedError

    def kill(self, grace_s: float = KILL_GRACE_S) -> None:
        """Interrupt the CLI (it ends its command and records the run as failed); SIGKILL after ``grace_s``."""
        if self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def _drain(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        for reader in self._readers:
            reader.join(timeout=STREAM_DRAIN_S)
        # A reader still blocked holds its pipe's lock, so only finished pipes are closed here.
        for reader, pipe in zip(self._readers, (self._proc.stdout, self._proc.stderr), strict=True):
            if pipe is not None and not reader.is_alive():
                pipe.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()
        self._proc.wait()
        self._drain()


class ExecHandle(_Handle[ExecSummary]):
    """A running ``codex-orchestrator exec --json``."""

    def write_stdin(self, data: bytes | str) -> None:
        """Send ``data`` to the command's terminal (str is UTF-8 encoded). Needs ``stdin=True``."""
        pipe = self._proc.stdin
        if pipe is None:
            raise no_stdin(self._plan)
        try:
            pipe.write(as_bytes(data))
            pipe.flush()
        except (OSError, ValueError) as exc:
            raise SdkError(f"cannot write to exec {self.run_id}: it has ended or stdin is closed") from exc

    def close_stdin(self) -> None:
        """End of input: the command's terminal sees end-of-file (Ctrl-D)."""
        pipe = self._proc.stdin
        if pipe is None:
            raise no_stdin(self._plan)
        with contextlib.suppress(OSError):  # the CLI is gone already; nothing was waiting for the EOF
            pipe.close()

    def _summarise(self, return_code: int) -> ExecSummary:
        return exec_summary(self._plan, self._stream, return_code)


class RunHandle(_Handle[RunSummary]):
    """A running ``codex-orchestrator run --json --no-prompt``."""

    def _summarise(self, return_code: int) -> RunSummary:
        return run_summary(self._plan, self._stream, return_code)


class Client(ClientBase):
    """Runs the ``codex-orchestrator`` CLI (``executable``) with ``env`` added to this process's environment,
    in ``cwd`` (default: the current directory)."""

    def exec(self, argv: Sequence[str], **options: Unpack[ExecOptions]) -> ExecHandle:
        """Start one tool call through the gate: ``codex-orchestrator exec --json ... -- argv``."""
        return ExecHandle(self._exec_plan(argv, options))

    def run(
        self, request_file: str | Path, *, runs_dir: str | Path | None = None, run_id: str | None = None
    ) -> RunHandle:
        """Start ``codex-orchestrator run --json --no-prompt request_file`` (a request that does not validate
        raises SdkError before anything starts)."""
        return RunHandle(self._run_plan(request_file, runs_dir, run_id))

    def resume(self, run_id: str, *, runs_dir: str | Path | None = None) -> RunHandle:
        """``codex-orchestrator resume RUN_ID``: re-enter a killed run; calls that succeeded are not run again."""
        return RunHandle(self._resume_plan(run_id, runs_dir))

    def approve(
        self,
        run_id: str,
        *,
        deny: bool = False,
        for_session: bool = False,
        remember: bool = False,
        reason: str | None = None,
        runs_dir: str | Path | None = None,
    ) -> None:
        """Answer the pending approval of ``run_id`` with ``codex-orchestrator approve``; SdkError if it fails."""
        launch = self._approve_launch(run_id, deny, for_session, reason, runs_dir, remember)
        try:
            done = subprocess.run(
                launch.command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=launch.env,
                cwd=launch.cwd,
                timeout=APPROVE_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise SdkError(f"approve {run_id} did not finish within {APPROVE_TIMEOUT_S} s") from exc
        except OSError as exc:
            raise SdkError(f"cannot start {launch.command[0]!r}: {exc.strerror}") from exc
        check_approved(run_id, done.returncode, done.stderr)
