"""Keeps Prefect's own logging readable: no empty traceback under a task that returned a ``Failed`` state.

Our tool-call task reports a failed call by *returning* ``Failed(...)`` (the call's facts are in the message),
not by raising. Prefect then logs "Task run failed with state: ..." with ``exc_info=True`` although no
exception is active, and the formatter prints ``NoneType: None`` under every failed task. The filter drops
that empty exception info and nothing else: a real exception keeps its traceback.
"""

from __future__ import annotations

import logging

TASK_RUN_LOGGER = "prefect.task_runs"


class DropEmptyExcInfo(logging.Filter):
    """Clears ``exc_info`` that holds no exception (``(None, None, None)``); the record itself passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is not None and record.exc_info[0] is None:
            record.exc_info = None
            record.exc_text = None
        return True


def install() -> None:
    """Attach the filter to Prefect's task-run logger once (idempotent)."""
    logger = logging.getLogger(TASK_RUN_LOGGER)
    if not any(isinstance(f, DropEmptyExcInfo) for f in logger.filters):
        logger.addFilter(DropEmptyExcInfo())
