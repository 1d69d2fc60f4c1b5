"""The events format: single events and batches on the stream, and their cursors."""

from __future__ import annotations

import pytest

from broker.events import (
    CURSOR_SCALE,
    MAX_BATCH,
    EventDecodeError,
    TaskEvent,
    TaskState,
    cursor_offset,
    decode_stream_message,
    encode_batch,
    utc_now,
)


def _event(task_id: str, state: TaskState = TaskState.QUEUED) -> TaskEvent:
    return TaskEvent(task_id, "calculate_distance", state, utc_now(), retries=0)


def test_a_single_event_has_its_stream_offset_scaled_as_its_cursor() -> None:
    [event] = decode_stream_message(_event("a", TaskState.STARTED).to_json(), 7)
    assert event.cursor == 7 * CURSOR_SCALE
    assert cursor_offset(event.cursor) == 7
    assert event.state is TaskState.STARTED


def test_a_batch_gives_each_event_its_own_increasing_cursor_in_one_offset() -> None:
    events = decode_stream_message(encode_batch([_event("a"), _event("b"), _event("c")]), 3)
    assert [e.task_id for e in events] == ["a", "b", "c"]
    cursors = [e.cursor for e in events]
    assert cursors == [3 * CURSOR_SCALE, 3 * CURSOR_SCALE + 1, 3 * CURSOR_SCALE + 2]
    assert all(c is not None and cursor_offset(c) == 3 for c in cursors)
    # every cursor of a later message is greater than every cursor of this one
    [later] = decode_stream_message(_event("d").to_json(), 4)
    assert later.cursor is not None
    assert later.cursor > max(c for c in cursors if c)


def test_a_batch_is_never_empty_nor_larger_than_the_cursor_space() -> None:
    assert MAX_BATCH < CURSOR_SCALE
    with pytest.raises(ValueError, match="batch"):
        encode_batch([])
    with pytest.raises(ValueError, match="batch"):
        encode_batch([_event(str(i)) for i in range(MAX_BATCH + 1)])


@pytest.mark.parametrize("body", [b"\xff\xfe", b"{", b"[]", b'{"type": "other"}',
                                  b'{"type": "cargo.task.events.v1", "events": "x"}',
                                  b'{"type": "cargo.task.event.v1", "task_id": "a"}'])
def test_anything_else_on_the_stream_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(EventDecodeError):
        decode_stream_message(body, 0)
