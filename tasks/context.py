"""The runs live in this process, by run id, and the hooks the CLI attaches to each new run (terminal prompt)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from codex_orchestrator.gate import ToolOrchestrator
from codex_orchestrator.request import RunRequest
from codex_orchestrator.run import RunRecorder


@dataclass
class LiveRun:
    request: RunRequest
    recorder: RunRecorder
    gate: ToolOrchestrator


_RUNS: dict[str, LiveRun] = {}
_HOOKS: list[Callable[[LiveRun], None]] = []
_LOCK = threading.Lock()


def register(run: LiveRun) -> None:
    with _LOCK:
        _RUNS[run.recorder.run_id] = run
        hooks = list(_HOOKS)
    for hook in hooks:
        hook(run)


def get(run_id: str) -> LiveRun:
    with _LOCK:
        return _RUNS[run_id]


def forget(run_id: str) -> None:
    with _LOCK:
        _RUNS.pop(run_id, None)


def on_run_registered(hook: Callable[[LiveRun], None]) -> Callable[[], None]:
    """Call ``hook`` for every run registered from now on; returns a function that removes it."""
    with _LOCK:
        _HOOKS.append(hook)

    def remove() -> None:
        with _LOCK:
            if hook in _HOOKS:
                _HOOKS.remove(hook)

    return remove
