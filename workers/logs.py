"""Celery's own lines in Cargo's logging dialect (``broker.logs``).

Celery configures logging when its worker starts: it puts its own formatter on
the root logger and a second handler, which does not propagate, on
``celery.task``. A receiver of ``celery.signals.setup_logging`` replaces all of
that (Celery then configures nothing), so this module connects one that calls
``configure_logging`` and keeps the one thing Celery would still have done: a
task's ``print`` goes to the log (``worker_redirect_stdouts``), as a line of the
same dialect.
"""

from __future__ import annotations

from typing import Any

import celery
from celery import current_task, signals
from structlog.typing import EventDict, WrappedLogger

from broker.logs import configure_logging
from broker.settings import Settings


def log_through_cargo(app: celery.Celery, settings: Settings) -> None:
    """When ``app``'s worker starts, log in Cargo's dialect instead of Celery's."""

    def setup_logging(**_: Any) -> None:
        configure_logging(settings, foreign_processors=[add_running_task])
        if app.conf.worker_redirect_stdouts:
            app.log.redirect_stdouts(app.conf.worker_redirect_stdouts_level)

    # Celery's signals hold receivers weakly: the app keeps this one alive as long
    # as it lives (tests build many apps; none outlives its test).
    app.cargo_setup_logging = setup_logging  # type: ignore[attr-defined]
    signals.setup_logging.connect(setup_logging)


def add_running_task(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """Name the running task on a library's line, as Celery's task formatter did
    (``task_name``, ``task_id``); a line outside a task is left as it is."""
    if current_task and current_task.request.id is not None:
        event.setdefault("task_name", current_task.name)
        event.setdefault("task_id", current_task.request.id)
    return event
