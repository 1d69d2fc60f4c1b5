"""``--output table``: the gateway's documents as tables people read (rendered to text)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, RenderableType

from cargoctl.tables import (
    age,
    arguments_summary,
    catalog_table,
    dead_letters_table,
    error_summary,
    limits_summary,
    mebibytes,
    queues_table,
    short_json,
    short_time,
    task_table,
    workers_table,
)


def text_of(renderable: RenderableType, width: int = 200) -> str:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def styled_cells(renderable: RenderableType) -> list[list[str]]:
    """The table's body lines, each as its cells' text with the ANSI codes of their style."""
    console = Console(width=200, record=True, color_system="standard", file=io.StringIO())
    console.print(renderable)
    return [line.split("│")[1:-1] for line in console.export_text(styles=True).splitlines()
            if line.startswith("│")]


def cells(text: str, rule: str = "│") -> list[list[str]]:
    """The table's body lines (``┃``: its header), each as its cells' text."""
    return [[c.strip() for c in line.split(rule)[1:-1]] for line in text.splitlines()
            if line.startswith(rule)]


SLEEP_SCHEMA = {
    "type": "object", "x-cargo-positional": ["seconds", "steps"], "required": ["seconds"],
    "properties": {"steps": {"type": "integer", "default": 1},
                   "seconds": {"type": "number", "minimum": 0}},
}


def test_a_schema_reads_as_its_parameters_in_call_order_with_defaults() -> None:
    assert arguments_summary(SLEEP_SCHEMA) == "seconds: number, steps: integer = 1"


def test_keyword_only_parameters_follow_the_positional_ones() -> None:
    schema = {"x-cargo-positional": ["a"],
              "properties": {"z": {"type": ["string", "null"]}, "a": {"anyOf": [
                  {"type": "integer"}, {"type": "null"}]}}}
    assert arguments_summary(schema) == "a: integer | null, z: string | null"


def test_a_task_without_parameters_says_none() -> None:
    assert arguments_summary({"type": "object", "properties": {}}) == "none"


def test_several_live_schemas_point_at_the_json_output() -> None:
    assert arguments_summary({"allOf": [SLEEP_SCHEMA, SLEEP_SCHEMA]}) == \
        "several schemas (a rolling deploy); see --output json"


def test_limits_read_as_seconds_mebibytes_and_retries() -> None:
    assert limits_summary({"time_limit": 600.0, "memory_limit_mb": 256, "max_retries": 3}) == \
        "time 600s, memory 256 MiB, retries 3"
    assert limits_summary({"time_limit": 10, "soft_time_limit": 8, "memory_limit_mb": 1,
                           "max_retries": 0}) == "time 10s, soft 8s, memory 1 MiB, retries 0"


def test_an_error_reads_as_its_type_and_message() -> None:
    assert error_summary({"type": "ValueError", "message": "bad"}) == "ValueError: bad"
    assert error_summary({"message": "only a message"}) == "only a message"
    assert error_summary(None) == ""


def test_a_dead_letters_time_is_shown_to_the_second() -> None:
    assert short_time("2026-11-25T09:14:48.066Z") == "2026-11-25 09:14:48"
    assert short_time("yesterday") == "yesterday"
    assert short_time(None) == ""


def test_long_json_is_cut_with_an_ellipsis() -> None:
    assert short_json(list(range(100)), 10) == "[0, 1, 2,…"
    assert short_json({"a": 1}) == '{"a": 1}'


def test_the_catalog_table_has_a_row_per_task_with_queue_arguments_limits_and_workers() -> None:
    doc = {"items": [{"name": "sleep", "queue": "cargo", "schema": SLEEP_SCHEMA,
                      "doc": "Sleep a while.", "workers": 2, "missing_on": ["w3"],
                      "limits": {"time_limit": 60.0, "memory_limit_mb": 256, "max_retries": 3}}]}
    text = text_of(catalog_table(doc))
    assert cells(text, "┃") == [["task / queue", "arguments", "limits", "workers", "doc"]]
    assert cells(text) == [
        ["sleep", "seconds: number, steps: integer = 1", "time 60s, memory 256 MiB, retries 3",
         "2 (missing on w3)", "Sleep a while."],
        ["cargo", "", "", "", ""],
    ]


def test_an_empty_catalog_says_no_worker_announced_a_task() -> None:
    assert "no live worker has announced a task" in text_of(catalog_table({"items": []}))


DEAD_LETTER: dict[str, Any] = {
    "task_id": "6b0f2c4e-0000-4000-8000-000000000001", "name": "memory_leak_task",
    "queue": "cargo", "reason": "memory_limit", "dead_lettered_at": "2026-11-25T09:14:48.066Z",
    "error": {"type": "MemoryLimitExceeded", "message": "grew past 256 MiB"},
    "args": [16], "kwargs": {"seconds": 5},
}


def test_the_dead_letters_table_has_a_row_per_letter_with_its_whole_id() -> None:
    text = text_of(dead_letters_table({"items": [DEAD_LETTER]}))
    assert cells(text, "┃") == [["task_id", "task / queue", "reason / at (UTC)",
                                 "error / arguments"]]
    assert cells(text) == [
        ["6b0f2c4e-0000-4000-8000-000000000001", "memory_leak_task", "memory_limit",
         "MemoryLimitExceeded: grew past 256 MiB"],
        ["", "cargo", "2026-11-25 09:14:48", "(16, seconds=5)"],
    ]


def test_on_a_narrow_terminal_the_id_stays_whole_on_its_line_and_the_rest_wraps() -> None:
    text = text_of(dead_letters_table({"items": [DEAD_LETTER]}), width=80)
    assert cells(text)[0][0] == DEAD_LETTER["task_id"]
    error = "".join(row[3] for row in cells(text))
    assert error.replace(" ", "") == "MemoryLimitExceeded:grewpast256MiB(16,seconds=5)"


def test_an_undecodable_dead_letter_shows_why_instead_of_arguments() -> None:
    item = {**DEAD_LETTER, "args": None, "kwargs": None, "undecodable": "nested too deep"}
    assert cells(text_of(dead_letters_table({"items": [item]})))[1][-1] == \
        "undecodable: nested too deep"


def test_a_page_with_more_after_it_points_at_all() -> None:
    text = text_of(dead_letters_table({"items": [DEAD_LETTER], "next": "/dead-letters?after=x"}))
    assert "more on the next page: --all lists every page" in text


def test_no_dead_letters_says_so() -> None:
    assert "no dead letters" in text_of(dead_letters_table({"items": []}))


def test_a_task_reads_as_one_field_per_line_in_reading_order() -> None:
    doc = {"task_id": "t1", "name": "sleep", "state": "dead_lettered", "retries": 3,
           "submitted_at": "2026-01-01T00:00:00.000Z", "reason": "failed",
           "error": {"type": "RuntimeError", "message": "boom"}, "progress": {"done": 1},
           "extra": True}
    lines = [line.split(None, 1) for line in text_of(task_table(doc)).splitlines() if line]
    assert [(k, v.strip()) for k, v in lines] == [
        ("task_id", "t1"), ("name", "sleep"), ("state", "dead_lettered"), ("retries", "3"),
        ("submitted_at", "2026-01-01T00:00:00.000Z"), ("progress", '{"done": 1}'),
        ("reason", "failed"), ("error", "RuntimeError: boom"), ("extra", "True")]


def test_a_result_of_null_is_shown_as_json_null() -> None:
    doc = {"task_id": "t1", "name": "n", "state": "succeeded", "result": None}
    assert ["result", "null"] in [line.split() for line in text_of(task_table(doc)).splitlines()]


QUEUES: dict[str, Any] = {"queues": [
    {"name": "cargo", "ready": 3, "unacked": 1, "consumers": 2,
     "dead_letter": {"name": "cargo.XQ", "ready": 5}},
    {"name": "reports", "ready": 0, "unacked": 0, "consumers": 0,
     "dead_letter": {"name": "reports.XQ", "ready": 0}},
]}


def test_the_queues_table_has_a_row_per_queue_with_depth_consumers_and_dead_letters() -> None:
    text = text_of(queues_table(QUEUES))
    assert cells(text, "┃") == [["queue", "ready", "unacked", "consumers", "dead-letter queue",
                                 "dead letters"]]
    assert cells(text) == [["cargo", "3", "1", "2", "cargo.XQ", "5"],
                           ["reports", "0", "0", "0", "reports.XQ", "0"]]


def test_queue_figures_are_right_aligned_so_digits_line_up() -> None:
    doc = {"queues": [{**QUEUES["queues"][0], "ready": 12345}, QUEUES["queues"][1]]}
    rows = [line for line in text_of(queues_table(doc)).splitlines() if line.startswith("│")]
    assert [row.split("│")[2] for row in rows] == [" 12345 ", "     0 "]


def test_a_queue_backlog_without_consumers_has_its_consumers_in_red() -> None:
    stranded = {"name": "reports", "ready": 7, "unacked": 0, "consumers": 0,
                "dead_letter": {"name": "reports.XQ", "ready": 0}}
    rows = styled_cells(queues_table({"queues": [QUEUES["queues"][0], stranded]}))
    red = "\x1b[1;31m"
    assert [red in row[3] for row in rows] == [False, True]  # cargo has 2 consumers
    assert [red in row[1] for row in rows] == [False, False]


def test_a_queue_with_dead_letters_has_their_count_in_red() -> None:
    rows = styled_cells(queues_table(QUEUES))
    assert ["\x1b[31m" in row[5] for row in rows] == [True, False]  # 5 in cargo.XQ, 0


def test_no_queues_says_so() -> None:
    assert "no task queue" in text_of(queues_table({"queues": []}))


NOW = datetime(2026, 12, 6, 3, 0, 30, tzinfo=UTC)
WORKER: dict[str, Any] = {"hostname": "celery@host", "queues": ["cargo", "reports"],
                          "concurrency": 2, "rss_bytes": 182095872, "processes": 3,
                          "last_seen": "2026-12-06T03:00:27.400000+00:00"}


def test_the_workers_table_has_a_row_per_worker_with_pool_memory_and_age() -> None:
    text = text_of(workers_table({"workers": [WORKER]}, NOW))
    assert cells(text, "┃") == [["hostname", "queues", "concurrency", "processes", "memory",
                                 "last seen"]]
    assert cells(text) == [["celery@host", "cargo, reports", "2", "3", "173.7 MiB", "2 s ago"]]


def test_a_worker_of_an_older_release_shows_dashes_for_the_figures_it_did_not_announce() -> None:
    older = {**WORKER, "queues": [], "concurrency": None, "rss_bytes": None, "processes": None}
    assert cells(text_of(workers_table({"workers": [older]}, NOW))) == [
        ["celery@host", "", "-", "-", "-", "2 s ago"]]


def test_no_workers_says_no_live_worker() -> None:
    assert "no live worker" in text_of(workers_table({"workers": []}, NOW))


def test_memory_reads_in_mebibytes_with_one_decimal() -> None:
    assert mebibytes(182095872) == "173.7 MiB"
    assert mebibytes(0) == "0.0 MiB"
    assert mebibytes(5 * 1024 ** 4) == "5,242,880.0 MiB"


def test_unknown_memory_reads_as_a_dash() -> None:
    assert mebibytes(None) == "-"
    assert mebibytes("a lot") == "-"
    assert mebibytes(True) == "-"


def test_an_age_reads_in_seconds_then_minutes_hours_and_days() -> None:
    def ago(seconds: float) -> str:
        return age(datetime.fromtimestamp(NOW.timestamp() - seconds, UTC).isoformat(), NOW)

    assert [ago(s) for s in (0, 3.9, 59.9, 60, 3599, 3600, 86399, 86400 * 3)] == [
        "0 s ago", "3 s ago", "59 s ago", "1 min ago", "59 min ago", "1 h ago", "23 h ago",
        "3 d ago"]


def test_a_worker_clock_ahead_of_this_one_says_so_instead_of_a_negative_age() -> None:
    assert age("2026-12-06T03:00:30.500+00:00", NOW) == "0 s ago"  # under a second: noise
    assert age("2026-12-06T03:00:35+00:00", NOW) == "clock 5 s ahead"


def test_a_last_seen_time_in_another_zone_or_without_one_is_read_correctly() -> None:
    assert age("2026-12-06T04:00:20+01:00", NOW) == "10 s ago"
    assert age("2026-12-06T03:00:20Z", NOW) == "10 s ago"
    assert age("2026-12-06T03:00:20", NOW) == "10 s ago"  # no zone: UTC, as API.md sends


def test_a_last_seen_that_is_not_a_time_is_shown_as_sent() -> None:
    assert age("yesterday", NOW) == "yesterday"
    assert age(None, NOW) == "-"
