"""Prefect's temporary server for a run started without ``PREFECT_API_URL``, tied to the life of this process.

Prefect starts it on first use (``SubprocessASGIServer``) and stops it at exit, but a SIGKILL leaves it running,
reparented to PID 1. Starting it here, up front, lets a watchdog (codex_orchestrator/reaper.py) end it with us,
and gives it the product's settings (flows/server_tuning.py: batched writes of task-run states and events).
"""

from __future__ import annotations

import os

from prefect.settings import PREFECT_API_URL

from codex_orchestrator.reaper import tie_to_this_process
from flows.server_tuning import apply_server_tuning


def start_embedded_server() -> int | None:
    """Start the temporary server if no API is configured; returns its pid (None when a server is configured)."""
    if PREFECT_API_URL.value():
        return None
    # Only now: importing Prefect's server (API routes, ORM models, migrations) took 2.7 s of CPU here, which a run
    # against a server of its own does not need.
    from prefect.server.api.server import SubprocessASGIServer

    apply_server_tuning(os.environ)  # the server process inherits this environment
    server = SubprocessASGIServer()  # the same instance Prefect's clients use later
    server.start()
    if server.server_process is None:
        return None
    tie_to_this_process(server.server_process.pid)
    return server.server_process.pid
