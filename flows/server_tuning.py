"""The Prefect server settings the product runs its own servers with (the embedded one of ``run``/``exec``, the
benchmarks', the tests'): the same UI and API, less server CPU per task run.

Prefect 3.9's defaults write each task-run state event in a transaction of its own (the task-run recorder's
batch size is 1) and the events of a run 20 at a time (the event persister). Both services take a batch when it
is full or every ``flush_interval`` seconds, and since 3.8 insert a batch in one statement. A larger batch with a
short interval keeps what the UI shows at most ``FLUSH_INTERVAL_S`` behind, and writes every state and event
all the same (both services flush what they hold when the server stops). bench/prefect_cost.py measures each
setting; docs/scale-out.md says what each buys. No Prefect import: these are environment variables, set before
any server starts, and a value the user set wins.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

# How far behind the API (and so the UI) may be on a task run's state and on events: both services flush at
# least this often. Prefect reads the task-run recorder's interval as whole seconds (int()): 1 is its least.
FLUSH_INTERVAL_S = 2
# Task-run state events written in one transaction: enough for every call a busy flush interval brings.
TASK_RUN_RECORDER_BATCH = 500
# Events (the UI's event feed, automations' history) written in one transaction.
EVENT_PERSISTER_BATCH = 500

TUNED_SERVER_SETTINGS: Mapping[str, str] = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": str(TASK_RUN_RECORDER_BATCH),
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": str(FLUSH_INTERVAL_S),
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": str(EVENT_PERSISTER_BATCH),
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": str(FLUSH_INTERVAL_S),
}


def tuned_server_settings() -> dict[str, str]:
    """A copy of the settings, for a server's environment."""
    return dict(TUNED_SERVER_SETTINGS)


def apply_server_tuning(environ: MutableMapping[str, str]) -> None:
    """Put the tuned settings into ``environ`` (a process's environment, inherited by the server it starts),
    leaving any the user has set."""
    for name, value in TUNED_SERVER_SETTINGS.items():
        environ.setdefault(name, value)
