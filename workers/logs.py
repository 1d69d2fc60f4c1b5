"""Celery's own lines in Cargo's logging dialect (``broker.logs``).

Celery configures logging when its worker starts: it puts its own formatter on
the root logger and a second handler, which does not propagate, on
``celery.task``. A receiver of ``celery.signals.setup_logging`` replaces all of
that (Celery then configures nothing). Cargo's logging is configured earlier, at
``celeryd_init``, so that the worker's first warning (Celery's superuser check,
which runs before its logging set-up) is a line of the dialect too; the
``setup_logging`` receiver keeps the one thing Celery would still have done: a
task's ``print`` goes to the log (``worker_redirect_stdouts``).
"""

from __future__ import annotations

from typing import Any

import celery
from celery import current_task, signals
from structlog.typing import EventDict, WrappedLogger

from broker.logs import configure_logging
from broker.settings import CargoSettings


def log_through_cargo(app: celery.Celery, settings: CargoSettings) -> None:
    """When ``app``'s worker starts, log in Cargo's dialect instead of Celery's."""

    def at_worker_init(instance: Any = None, **_: Any) -> None:
        if getattr(instance, "app", None) is app:  # signals are process-wide
            configure_logging(settings, foreign_processors=[add_running_task])

    def instead_of_celerys(**_: Any) -> None:
        if app.conf.worker_redirect_stdouts:
            app.log.redirect_stdouts(app.conf.worker_redirect_stdouts_level)

    # As workers.lifecycle connects its receivers: held strongly, once per app.
    uid = f"cargo.logs.{id(app)}"
    signals.celeryd_init.connect(at_worker_init, weak=False, dispatch_uid=f"{uid}.init")
    signals.setup_logging.connect(instead_of_celerys, weak=False, dispatch_uid=f"{uid}.setup")


def add_running_task(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """Name the running task on a library's line, as Celery's task formatter did
    (``task_name``, ``task_id``); a line outside a task is left as it is."""
    if current_task and current_task.request.id is not None:
        event.setdefault("task_name", current_task.name)
        event.setdefault("task_id", current_task.request.id)
    return event
