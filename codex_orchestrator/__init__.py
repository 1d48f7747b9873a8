"""codex-orchestrator core: the Prefect-free engine behind every autonomy run.

Flow at a glance: a ``RunRequest`` (request.py) names steps; each step is a tool call that passes the
``ToolOrchestrator`` gate (gate.py): approval (policy.py, commands.py, approvals.py) → sandbox (sandbox.py)
→ attempt in a PTY (exec/) → retry (retry.py). Everything is recorded under ``.runs/`` (records/) and
traced (telemetry.py). ``flows/`` and ``tasks/`` wire this into Prefect; the CLI (cli.py) and SDK (sdk/)
drive it.
"""

from __future__ import annotations

__version__ = "0.1.0"
