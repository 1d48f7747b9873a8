"""The verification milestone's policy and data, free of Prefect (flows/verification.py runs it).

Flow at a glance: diagnostics (what changed, tool versions) → spec-guard (specs kept up with the code) →
guardrails (lint, test, eval, … as gated tool calls, each passed/failed/skipped/error, required or advisory)
→ review (a person or a reviewer command approves, requests changes, or skips) → the run status rule.

Files: settings.py (the request's ``verification`` section), records.py (the manifest's sections), git.py
(read-only git, sandboxed), diagnostics.py, spec_guard.py, guardrails.py, review.py, errors.py.
"""
