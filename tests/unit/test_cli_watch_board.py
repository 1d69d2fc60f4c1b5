"""``cargoctl watch``'s live table: rows folded from task documents and events, rendered."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console, RenderableType

from cargoctl.watch_board import WatchBoard, progress_fraction, progress_label


def text_of(renderable: RenderableType, width: int = 160) -> str:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def row_of(board: WatchBoard, task_id: str, width: int = 160) -> list[str]:
    text = text_of(board.render(width), width)
    line = next(line for line in text.splitlines() if task_id[:8] in line)
    return [cell.strip() for cell in line.split("│")[1:-1]]


def event(task_id: str, state: str, **fields: Any) -> dict[str, Any]:
    return {"type": "event", "task_id": task_id, "name": "sleep", "state": state,
            "cursor": "1", "ts": "2026-01-01T00:00:00.000Z", **fields}


@pytest.mark.parametrize(("progress", "fraction"), [
    ({"done": 3, "total": 10}, 0.3),
    ({"current": 5, "total": 5}, 1.0),
    ({"completed": 1, "total": 4}, 0.25),
    ({"percent": 42}, 0.42),
    ({"done": 12, "total": 10}, 1.0),  # a task that over-counts still fills the bar, no more
])
def test_progress_that_counts_is_a_fraction_of_the_bar(progress: Any, fraction: float) -> None:
    assert progress_fraction(progress) == pytest.approx(fraction)


@pytest.mark.parametrize("progress", [
    {"leaked_mb": 12.5}, {"done": 3}, {"done": 3, "total": 0}, {"done": True, "total": 2},
    {"done": "3", "total": "10"}, [1, 2], "half", None,
])
def test_progress_that_does_not_count_has_no_fraction(progress: Any) -> None:
    assert progress_fraction(progress) is None


def test_progress_labels_read_as_counts_percentages_or_key_values() -> None:
    assert progress_label({"done": 3, "total": 10}) == "3/10"
    assert progress_label({"percent": 42.5}) == "42.5%"
    assert progress_label({"leaked_mb": 12.5, "phase": "alloc"}) == "leaked_mb=12.5 phase=alloc"
    assert progress_label(None) == ""


def test_a_running_task_shows_its_state_a_bar_and_its_count() -> None:
    board = WatchBoard()
    board.apply(event("t1", "progress", progress={"done": 2, "total": 4}, retries=0))
    # Half the bar drawn; the other half is blank here (no colours to draw its back).
    assert row_of(board, "t1") == ["t1", "sleep", "progress", "━" * 10 + " " * 11 + "2/4", ""]


def test_a_succeeded_task_fills_its_bar_and_shows_its_result() -> None:
    board = WatchBoard()
    board.apply(event("t1", "progress", progress={"done": 2, "total": 4}))
    board.apply(event("t1", "succeeded", result=5.0))
    assert row_of(board, "t1") == ["t1", "sleep", "succeeded", "━" * 20 + " 2/4", "result 5.0"]


def test_progress_that_does_not_count_is_shown_as_text_without_a_bar() -> None:
    board = WatchBoard()
    board.apply(event("t1", "progress", progress={"leaked_mb": 12.5}))
    assert row_of(board, "t1")[3] == "leaked_mb=12.5"


def test_a_dead_lettered_task_shows_its_reason_and_error() -> None:
    board = WatchBoard()
    board.apply(event("t1", "dead_lettered", reason="memory_limit", retries=0,
                      error={"type": "MemoryLimitExceeded", "message": "grew past 96 MiB"}))
    assert row_of(board, "t1")[-1] == "memory_limit: MemoryLimitExceeded: grew past 96 MiB"


def test_a_retry_shows_the_error_then_a_new_attempt_starts_from_an_empty_bar() -> None:
    board = WatchBoard()
    board.apply(event("t1", "progress", progress={"done": 3, "total": 4}))
    board.apply(event("t1", "retrying", retries=1,
                      error={"type": "IOError", "message": "flaky"}))
    assert row_of(board, "t1")[2:] == ["retrying (retry 1)", "━" * 15 + " " * 6 + "3/4",
                                       "IOError: flaky"]
    board.apply(event("t1", "started", retries=1))
    assert row_of(board, "t1")[2:] == ["started (retry 1)", "", ""]


def test_a_task_document_from_get_is_a_row_like_an_event() -> None:
    board = WatchBoard()
    board.apply({"task_id": "t1", "name": "calculate_distance", "state": "queued",
                 "retries": 0, "submitted_at": "2026-01-01T00:00:00.000Z"})
    assert row_of(board, "t1") == ["t1", "calculate_distance", "queued", "", ""]


def test_an_id_not_known_yet_is_a_waiting_row_until_its_first_event() -> None:
    board = WatchBoard()
    board.expect("t1")
    assert row_of(board, "t1") == ["t1", "", "not known yet", "", ""]
    assert board.summary() == "1 task: 1 not known yet"
    board.apply(event("t1", "started"))
    assert row_of(board, "t1")[2] == "started"
    assert board.summary() == "1 task: 1 started"


def test_rows_keep_the_order_tasks_were_first_seen_in() -> None:
    board = WatchBoard()
    for task_id in ("a1", "b2", "c3"):
        board.apply(event(task_id, "queued"))
    board.apply(event("a1", "started"))
    assert [row.task_id for row in board.visible()] == ["a1", "b2", "c3"]


def test_beyond_max_rows_the_newest_tasks_are_shown_and_the_rest_counted() -> None:
    board = WatchBoard(max_rows=2)
    for task_id in ("a1", "b2", "c3"):
        board.apply(event(task_id, "succeeded", result=1))
    assert [row.task_id for row in board.visible()] == ["b2", "c3"]
    assert board.summary() == "3 tasks: 3 succeeded, 1 earlier not shown"
    assert "a1" not in text_of(board.render())


def test_a_narrow_terminal_gets_short_ids_and_short_bars_so_the_outcome_fits() -> None:
    task_id = "35523d33-a4d1-4b53-8064-f15ace6e68d8"
    board = WatchBoard()
    board.apply({**event(task_id, "succeeded", result=1.4142135623730951),
                 "name": "calculate_distance", "progress": {"done": 1, "total": 1}})
    assert row_of(board, task_id, width=100) == [
        "35523d33…", "calculate_distance", "succeeded", "━" * 10 + " 1/1",
        "result 1.4142135623730951"]
    assert row_of(board, task_id, width=120)[0] == task_id
