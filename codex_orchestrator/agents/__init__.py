"""Agents driven under the gate: every command, patch and permission an agent asks for is a tool call of the run.

Flow at a glance: ``execute_call`` hands an agent step (``agent: codex``) to ``step.run_agent_call``, which records
the step and runs ``codex.CodexDriver``: codex app-server in our sandbox (``app_server``, ``bridge``), one turn,
each approval request a gated call (``gated_call``: ``decisions`` classifies it with the run's classifier and
``decide()``; the gate's approver asks a person when needed), its events from ``transcript``.

Files: codex.py (driver), step.py (the step's record), gated_call.py (one agent call), decisions.py (pure
classification), protocol.py (approval requests and answers), app_server.py (the SDK client and launch),
bridge.py (the model endpoint, the sandbox's only way out), errors.py, transcript.py (events),
scripted_model.py (the stand-in LLM for tests, the demo and the bench). A second agent is a new driver module.
"""
