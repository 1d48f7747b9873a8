"""Serve prefect.yaml's deployments from this machine, named ``<name>-served`` (work-pool ones stay untouched).

Usage: PREFECT_API_URL=http://127.0.0.1:4200/api python deployments/serve.py [NAME ...]
(the same as ``codex-orchestrator serve``; start a server first with ``prefect server start``).
"""

from __future__ import annotations

import sys

from flows.serving import serve_all

if __name__ == "__main__":
    serve_all(names=sys.argv[1:])
