"""One logging dialect for every Cargo process: structlog, JSON when asked.

``configure_logging(settings)`` is called once at a process's start (gateway,
worker, bridge, canary), never at import. Cargo's own lines (structlog) and the
standard-library records of the libraries underneath (Celery, kombu, aio-pika,
aiohttp) go through one handler on the root logger with structlog's
``ProcessorFormatter``, so each line carries ``event``, ``level``, ``logger`` and
``timestamp``: one JSON object per line with ``CARGO_LOG_FORMAT=json``, a
readable console line otherwise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import structlog
from structlog.typing import Processor

from broker.settings import CargoSettings


class CargoLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler ``configure_logging`` installs; its own class so that a
    second call replaces it instead of doubling every line, and leaves handlers
    others installed (pytest's caplog) in place."""


def configure_logging(settings: CargoSettings,
                      foreign_processors: Sequence[Processor] = ()) -> None:
    """Route structlog and the standard library's records to stderr in one format.

    ``foreign_processors`` run on the standard library's records only (after the
    level, logger name and timestamp are added): the worker adds the running
    task's name and id to Celery's lines with one.
    """
    level = getattr(logging, settings.log_level)
    stamped: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*stamped, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        # Below the level a call returns at once, before any processor runs.
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = CargoLogHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*stamped, *foreign_processors],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    *_renderer(settings.log_format)],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, CargoLogHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Python's warnings (a library's DeprecationWarning, Celery's superuser check)
    # become records of the ``py.warnings`` logger: lines of the dialect too.
    logging.captureWarnings(True)
    # aio-pika logs every reconnect attempt with a traceback; the supervisor already says it.
    logging.getLogger("aio_pika").setLevel(max(level, logging.ERROR))
    logging.getLogger("aiormq").setLevel(max(level, logging.ERROR))


def _renderer(log_format: str) -> list[Processor]:
    if log_format == "json":
        # A traceback becomes a string field: the line stays one JSON object.
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    return [structlog.dev.ConsoleRenderer(colors=False)]
