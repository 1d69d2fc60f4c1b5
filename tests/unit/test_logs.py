"""broker.logs: Cargo's structlog lines and the libraries' records in one format."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from broker.logs import CargoLogHandler, configure_logging
from broker.settings import load_settings


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.configure(**config)


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.usefixtures("restored_logging")
def test_json_format_renders_cargo_and_library_lines_as_one_json_object_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(load_settings({"CARGO_LOG_FORMAT": "json"}))
    structlog.get_logger("workers.guard").error("memory_guard.stopped", task_id="t1", pid=7)
    logging.getLogger("celery.worker.strategy").info("Task %s[%s] received", "sleep", "t2")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("kombu").exception("connection lost")
    cargo, celery, kombu = json_lines(capsys.readouterr().err)
    assert {k: cargo[k] for k in ("event", "level", "logger", "task_id", "pid")} == {
        "event": "memory_guard.stopped", "level": "error", "logger": "workers.guard",
        "task_id": "t1", "pid": 7}
    assert (celery["event"], celery["level"]) == ("Task sleep[t2] received", "info")
    assert celery["logger"] == "celery.worker.strategy"
    # a traceback stays inside its line, as a field
    assert "ValueError: boom" in str(kombu["exception"])
    for line in (cargo, celery, kombu):
        assert {"event", "level", "timestamp"} <= line.keys()


@pytest.mark.usefixtures("restored_logging")
def test_console_format_writes_the_event_and_its_fields_on_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(load_settings({"CARGO_LOG_FORMAT": "console"}))
    structlog.get_logger("workers.stream_lookup").info("events_stream.lookup", task_id="t1",
                                                       outcome="succeeded")
    [line] = capsys.readouterr().err.splitlines()
    assert "events_stream.lookup" in line.split()
    assert {"task_id=t1", "outcome=succeeded"} <= set(line.split())


@pytest.mark.usefixtures("restored_logging")
def test_configuring_again_replaces_cargos_handler_and_keeps_the_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings({"CARGO_LOG_FORMAT": "json"})
    configure_logging(settings)
    configure_logging(settings)
    root = logging.getLogger()
    assert sum(isinstance(h, CargoLogHandler) for h in root.handlers) == 1
    logging.getLogger("aiohttp.server").warning("once")
    assert [line["event"] for line in json_lines(capsys.readouterr().err)] == ["once"]


@pytest.mark.usefixtures("restored_logging")
def test_lines_below_the_level_are_not_written(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(load_settings({"CARGO_LOG_FORMAT": "json", "CARGO_LOG_LEVEL": "WARNING"}))
    structlog.get_logger("broker.declare").info("topology.declared")
    logging.getLogger("celery").info("ready.")
    structlog.get_logger("broker.declare").warning("topology.watch_queue_outdated")
    events = [line["event"] for line in json_lines(capsys.readouterr().err)]
    assert events == ["topology.watch_queue_outdated"]
