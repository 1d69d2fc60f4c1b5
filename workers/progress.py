"""Progress reporting for task code that knows nothing about Celery.

Tasks are plain functions (``workers.tasks``) so they can be validated, tested
and called without a worker. They report progress through
:func:`report_progress`; while a worker runs a task it installs a reporter with
:func:`reporting_to` that turns each report into a ``progress`` event. Outside
a worker (tests, a REPL) reports go nowhere.

The reporter lives in a :class:`~contextvars.ContextVar` rather than a plain
global so that concurrent tasks in one process (thread or gevent pools) each
see their own task's reporter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

Reporter = Callable[[dict[str, Any]], None]

_reporter: ContextVar[Reporter | None] = ContextVar("cargo_progress_reporter", default=None)


def report_progress(**progress: Any) -> None:
    """Report the running task's progress, e.g. ``report_progress(done=3, total=10)``.

    The keyword arguments become the event's ``progress`` object as they are, so
    they must be JSON-serialisable.
    """
    reporter = _reporter.get()
    if reporter is not None:
        reporter(dict(progress))


@contextmanager
def reporting_to(reporter: Reporter) -> Iterator[None]:
    """Send every :func:`report_progress` inside the block to ``reporter``."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)
