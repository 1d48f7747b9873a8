"""Serve the autonomy flow from this machine so runs can be started (and approved) from the Prefect UI.

Usage: PREFECT_API_URL=http://127.0.0.1:4200/api python deployments/serve.py
(start a server first with `prefect server start`). The UI's "Run" form takes a request (see README).
"""

from __future__ import annotations

from flows.autonomy import autonomy

if __name__ == "__main__":
    autonomy.serve(name="autonomy", tags=["codex-orchestrator"])
