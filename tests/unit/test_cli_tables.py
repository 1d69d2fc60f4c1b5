"""``--output table``: the gateway's documents as tables people read (rendered to text)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console, RenderableType

from cargoctl.tables import (
    arguments_summary,
    catalog_table,
    dead_letters_table,
    error_summary,
    limits_summary,
    short_json,
    short_time,
    task_table,
)


def text_of(renderable: RenderableType, width: int = 200) -> str:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


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
