"""Keeps Prefect's own logging readable: no empty traceback under a task that returned a ``Failed`` state, and
no second copy on the terminal of an approval notice the CLI prints itself.

Our tool-call task reports a failed call by *returning* ``Failed(...)`` (the call's facts are in the message),
not by raising. Prefect then logs "Task run failed with state: ..." with ``exc_info=True`` although no
exception is active, and the formatter prints ``NoneType: None`` under every failed task. The filter drops
that empty exception info and nothing else: a real exception keeps its traceback.
"""

from __future__ import annotations

import logging

TASK_RUN_LOGGER = "prefect.task_runs"
# Set (``extra={PAUSE_NOTICE: True}``) on the log record that tells a person a call waits for them: it goes to
# the Prefect UI always, and to the terminal unless a CLI in front of the run prints that notice itself.
PAUSE_NOTICE = "codex_pause_notice"


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


class DropPauseNotices(logging.Filter):
    """Drops pause notices (``PAUSE_NOTICE``) on the handler it is attached to; everything else passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, PAUSE_NOTICE, False)


def quiet_pause_notices_on_console() -> None:
    """Keep pause notices off Prefect's console handlers in this process (its API handler still ships them):
    the CLI that runs the flow here says what waits and how to answer, once. Idempotent."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    for logger in [logging.root, *loggers]:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not any(
                isinstance(f, DropPauseNotices) for f in handler.filters
            ):
                handler.addFilter(DropPauseNotices())
