"""A Prefect task worker serving the tool-call task, all its calls sharing one API client.

``prefect task serve -m tasks.tool_call`` runs each call with a client of its own: Prefect's task engine makes
a new one when the thread it runs in has none, and building one (an httpx client and its TLS context, the CA
bundle loaded) was a third of a worker's CPU per call here (bench/scale_out.py). Prefect shares the client of a
flow run with the tasks its thread pool runs the same way: a client context entered around the worker is
copied into every call's thread.
"""

from __future__ import annotations


def serve_tool_calls(limit: int | None) -> None:
    """Serve ``tool_call`` until interrupted, at most ``limit`` calls at once (None: no limit)."""
    from prefect.context import SyncClientContext
    from prefect.task_worker import serve

    from tasks.tool_call import tool_call

    with SyncClientContext.get_or_create():
        serve(tool_call, limit=limit)
