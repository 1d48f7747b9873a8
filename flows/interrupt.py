"""Ending a process that runs flows at once on SIGINT/SIGTERM: records first, Prefect best-effort, then exit.

Unwinding a KeyboardInterrupt through Prefect's engine can take minutes when the embedded server got the
same Ctrl-C (its client retries a dead server), and a paused approval keeps a worker thread that the
interpreter would wait for at exit. So the handler marks this process's runs ``interrupted`` in their records,
ends every command's process tree, tells Prefect within a short bound (the parent flow run Crashed, paused
approval flow runs Cancelled), and exits with 128 + the signal number.

A terminal's Ctrl-C reaches the embedded server too (one process group), and it stops listening at once. Its
client would try each connection four times with backoff (3.5 s) and Prefect's log handler would wait 5 s at
exit for logs it can no longer deliver: so one refused connection ends the talk with that server, and its
unsent logs are dropped (the run's own records have everything), and the handler says so in one line.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
import threading
from types import FrameType
from urllib.parse import urlsplit
from uuid import UUID

from codex_orchestrator.exec.session import close_every_session
from codex_orchestrator.run import RunOwner, interrupt_active_runs

# Prefect is told within this long, or not at all (its server may be gone with the same signal).
PREFECT_CLEANUP_S = 3.0
# Agent steps get this long to interrupt their turn and end codex (agents/codex.py).
AGENT_STOP_S = 2.5
# Whether the API still listens: a refused connection answers at once; anything slower counts as there.
PROBE_TIMEOUT_S = 0.5
# Command trees get this long between SIGTERM and SIGKILL.
KILL_GRACE_S = 1.0
# The runs' records (agents stopped first) are written within this long, or left to their heartbeat.
RECORDS_S = AGENT_STOP_S + 1.5


def install() -> None:
    """Make SIGINT and SIGTERM end this process as ``shutdown`` says (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handler)


def _handler(signum: int, _frame: FrameType | None) -> None:
    shutdown(signum)


def shutdown(signum: int) -> None:
    name = signal.Signals(signum).name
    code = 128 + signum
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the shutdown itself
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    owners: list[RunOwner] = []
    recorded = threading.Event()

    def record() -> None:
        nonlocal owners
        try:
            _interrupt_agents(name)
            owners = interrupt_active_runs(code, f"interrupted by {name}")
        finally:
            recorded.set()

    # In a thread of its own: the signal may have come while this thread held a lock the records need (the
    # event log's, run.json's flock), and waiting for it here would wait forever (docs/concurrency.md).
    threading.Thread(target=record, name="interrupt-records", daemon=True).start()
    try:
        if not recorded.wait(RECORDS_S):
            print(
                f"the runs' records were not marked interrupted within {RECORDS_S:g} s (the {name} came while "
                "they were being written); `codex-orchestrator runs` shows them interrupted once their "
                "heartbeat is stale",
                file=sys.stderr,
            )
    finally:
        close_every_session(KILL_GRACE_S)
        gone = _tell_prefect(owners, name)
        for owner in owners:
            print(f"run {owner.run_id} interrupted by {name}: {owner.paths.manifest}", file=sys.stderr)
        for api_url in gone:
            print(
                f"Prefect's server at {api_url} stopped with the same {name}: its flow runs keep their last "
                "state there (the run's records say interrupted)",
                file=sys.stderr,
            )
        if gone:  # after the lines above: in a flow run, Prefect ships printed lines as logs too
            _drop_unsent_logs()
        sys.stdout.flush()
        sys.stderr.flush()
        atexit._run_exitfuncs()  # stops Prefect's temporary server, flushes its logs
        os._exit(code)


def _interrupt_agents(name: str) -> None:
    """Agent steps of this process: turn/interrupt, codex ended, their records written (bounded by
    ``AGENT_STOP_S``). Only if one was ever started here: the driver imports codex's SDK."""
    agents = sys.modules.get("codex_orchestrator.agents.codex")
    if agents is not None:
        agents.interrupt_every_agent(name, AGENT_STOP_S)


def _tell_prefect(owners: list[RunOwner], name: str) -> list[str]:
    """Set the runs' Prefect states within ``PREFECT_CLEANUP_S``; returns the API URLs that refused us."""
    jobs: list[tuple[str, str, bool]] = []  # (api url, flow run id, is an approval)
    for owner in owners:
        state = owner.state()
        api_url = state.prefect.api_url
        if not api_url:
            continue
        if state.prefect.parent_flow_run_id:
            jobs.append((api_url, state.prefect.parent_flow_run_id, False))
        jobs += [(api_url, m.flow_run_id, False) for m in state.milestones if m.flow_run_id]
        jobs += [(api_url, a.flow_run_id, True) for a in owner.store.approvals() if a.flow_run_id]
        if state.review is not None and state.review.flow_run_id and state.review.status == "pending":
            jobs.append((api_url, state.review.flow_run_id, True))  # the review's pause, as an approval's
    # A refused connection answers at once; Prefect's client would retry it with backoff.
    gone = sorted(api_url for api_url in {job[0] for job in jobs} if _refused(api_url))
    jobs = [job for job in jobs if job[0] not in gone]
    if not jobs:
        return gone
    thread = threading.Thread(target=_set_states, args=(jobs, name, gone), daemon=True)
    thread.start()
    thread.join(PREFECT_CLEANUP_S)
    return list(gone)


def _set_states(jobs: list[tuple[str, str, bool]], name: str, gone: list[str]) -> None:
    import httpx
    from prefect import State
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings
    from prefect.states import Cancelled, Crashed

    for api_url, flow_run_id, approval in jobs:
        if api_url in gone:
            continue
        try:
            with (
                temporary_settings({PREFECT_API_URL: api_url, PREFECT_CLIENT_MAX_RETRIES: 0}),
                # One connection attempt: a refused one means the server is gone, and retrying it is waiting.
                get_client(sync_client=True, httpx_settings={"transport": httpx.HTTPTransport()}) as client,
            ):
                current = client.read_flow_run(UUID(flow_run_id)).state
                if current is not None and current.is_final():
                    continue
                state: State[object] = (
                    Cancelled(message=f"the process waiting for this answer was stopped by {name}")
                    if approval
                    else Crashed(message=f"stopped by {name}; `codex-orchestrator resume` continues it")
                )
                client.set_flow_run_state(UUID(flow_run_id), state, force=True)
        except httpx.ConnectError:
            gone.append(api_url)
        except Exception:  # the server may have gone with the same signal: records already say what happened
            continue


def _refused(api_url: str) -> bool:
    """Whether nothing listens at the API's address any more (the embedded server got the same signal)."""
    url = urlsplit(api_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", port), timeout=PROBE_TIMEOUT_S):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:  # unreachable or slow: the bounded attempt below decides
        return False


def _drop_unsent_logs() -> None:
    """Stop Prefect's log shipping without waiting: its server is gone, and at exit it would wait 5 s for it."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=0)
