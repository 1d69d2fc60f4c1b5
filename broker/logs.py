"""structlog set-up shared by every Cargo process (called at start, never at import)."""

from __future__ import annotations

import logging
import sys

import structlog

from broker.settings import CargoSettings


def configure_logging(settings: CargoSettings) -> None:
    level = getattr(logging, settings.log_level)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aio-pika logs every reconnect attempt with a traceback; the supervisor already says it.
    logging.getLogger("aio_pika").setLevel(max(level, logging.ERROR))
    logging.getLogger("aiormq").setLevel(max(level, logging.ERROR))
