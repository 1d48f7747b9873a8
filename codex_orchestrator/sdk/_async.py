"""The async SDK: ``AsyncClient`` starts the CLI with ``asyncio.create_subprocess_exec``; reader tasks, not
threads, feed each handle's event stream."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import AsyncIterator, Sequence
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

# One event is one line and an output chunk can be large: asyncio's 64 KiB default line limit is too small.
STREAM_LINE_LIMIT_BYTES = 16 * 1024 * 1024


class _AsyncHandle(HandleBase, Generic[S]):
    """The async twin of ``_Handle``: reader tasks instead of threads."""

    def __init__(self, plan: Plan, proc: asyncio.subprocess.Process) -> None:
        self._plan = plan
        self._proc = proc
        self._stream = EventStream()
        self._cond = asyncio.Condition()
        self._readers = [asyncio.create_task(self._read_stdout()), asyncio.create_task(self._read_stderr())]

    @staticmethod
    async def _spawn(plan: Plan) -> asyncio.subprocess.Process:
        launch = plan.launch
        try:
            proc = await asyncio.create_subprocess_exec(
                *launch.command,
                stdin=asyncio.subprocess.PIPE if plan.stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=launch.env,
                cwd=launch.cwd,
                limit=STREAM_LINE_LIMIT_BYTES,
            )
        except OSError as exc:
            raise SdkError(f"cannot start {launch.command[0]!r}: {exc.strerror}") from exc
        tie_to_this_process(proc.pid)  # the CLI child ends (recorded interrupted) when this process dies
        return proc

    async def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        try:
            while raw := await self._proc.stdout.readline():
                async with self._cond:
                    self._stream.feed(raw)
                    self._cond.notify_all()
        except ValueError as exc:  # a line beyond STREAM_LINE_LIMIT_BYTES
            self._stream.failure = self._stream.failure or SdkError(f"event line too long: {exc}")
            while await self._proc.stdout.read(65536):
                pass
        finally:
            async with self._cond:
                self._stream.eof = True
                self._cond.notify_all()

    async def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        while chunk := await self._proc.stderr.read(65536):
            self._stream.feed_stderr(chunk)

    @property
    def return_code(self) -> int | None:
        return self._proc.returncode

    async def events(self) -> AsyncIterator[Event]:
        """Every event in ``seq`` order, from the first, as it arrives; ends when the CLI closes stdout."""
        index = 0
        while True:
            async with self._cond:
                await self._cond.wait_for(functools.partial(self._stream.ready, index))
                event = self._stream.take(index)
            if event is None:
                return
            index += 1
            yield event

    async def wait(self, timeout_s: float | None = None) -> S:
        """Wait for the CLI to exit and return the summary; SdkError if it did not get that far."""
        try:
            return_code = await asyncio.wait_for(self._proc.wait(), timeout_s)
        except TimeoutError as exc:
            raise SdkError(
                f"{self._plan.what} {self.run_id} still running after {timeout_s} s (wait longer or kill() it)"
            ) from exc
        await self._drain()
        return self._summarise(return_code)

    def _summarise(self, return_code: int) -> S:
        raise NotImplementedError

    async def kill(self, grace_s: float = KILL_GRACE_S) -> None:
        """Interrupt the CLI (it ends its command and records the run as failed); SIGKILL after ``grace_s``."""
        if self._proc.returncode is not None:
            return
        try:
            self._proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(self._proc.wait(), grace_s)
        except ProcessLookupError:
            pass
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()

    async def _drain(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()
        _done, pending = await asyncio.wait(self._readers, timeout=STREAM_DRAIN_S)
        for task in pending:
            task.cancel()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.kill()
        await self._proc.wait()
        await self._drain()


class AsyncExecHandle(_AsyncHandle[ExecSummary]):
    """A running ``codex-orchestrator exec --json``, for ``async`` code."""

    async def write_stdin(self, data: bytes | str) -> None:
        """Send ``data`` to the command's terminal (str is UTF-8 encoded). Needs ``stdin=True``."""
        pipe = self._proc.stdin
        if pipe is None:
            raise no_stdin(self._plan)
        try:
            pipe.write(as_bytes(data))
            await pipe.drain()
        except (OSError, RuntimeError) as exc:  # RuntimeError: the transport is already closed
            raise SdkError(f"cannot write to exec {self.run_id}: it has ended or stdin is closed") from exc

    async def close_stdin(self) -> None:
        """End of input: the command's terminal sees end-of-file (Ctrl-D)."""
        pipe = self._proc.stdin
        if pipe is None:
            raise no_stdin(self._plan)
        pipe.close()
        with contextlib.suppress(OSError):  # the CLI is gone already; nothing was waiting for the EOF
            await pipe.wait_closed()

    def _summarise(self, return_code: int) -> ExecSummary:
        return exec_summary(self._plan, self._stream, return_code)


class AsyncRunHandle(_AsyncHandle[RunSummary]):
    """A running ``codex-orchestrator run --json --no-prompt``, for ``async`` code."""

    def _summarise(self, return_code: int) -> RunSummary:
        return run_summary(self._plan, self._stream, return_code)


class AsyncClient(ClientBase):
    """The async twin of ``Client``, on ``asyncio.create_subprocess_exec``."""

    async def exec(self, argv: Sequence[str], **options: Unpack[ExecOptions]) -> AsyncExecHandle:
        """Start one tool call through the gate: ``codex-orchestrator exec --json ... -- argv``."""
        plan = self._exec_plan(argv, options)
        return AsyncExecHandle(plan, await AsyncExecHandle._spawn(plan))

    async def run(
        self, request_file: str | Path, *, runs_dir: str | Path | None = None, run_id: str | None = None
    ) -> AsyncRunHandle:
        """Start ``codex-orchestrator run --json --no-prompt request_file``."""
        plan = self._run_plan(request_file, runs_dir, run_id)
        return AsyncRunHandle(plan, await AsyncRunHandle._spawn(plan))

    async def resume(self, run_id: str, *, runs_dir: str | Path | None = None) -> AsyncRunHandle:
        """``codex-orchestrator resume RUN_ID``: re-enter a killed run; calls that succeeded are not run again."""
        plan = self._resume_plan(run_id, runs_dir)
        return AsyncRunHandle(plan, await AsyncRunHandle._spawn(plan))

    async def approve(
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
            proc = await asyncio.create_subprocess_exec(
                *launch.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=launch.env,
                cwd=launch.cwd,
            )
        except OSError as exc:
            raise SdkError(f"cannot start {launch.command[0]!r}: {exc.strerror}") from exc
        try:
            _out, err = await asyncio.wait_for(proc.communicate(), APPROVE_TIMEOUT_S)
        except TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise SdkError(f"approve {run_id} did not finish within {APPROVE_TIMEOUT_S} s") from exc
        check_approved(run_id, proc.returncode if proc.returncode is not None else -1, err)
