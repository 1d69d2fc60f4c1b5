"""broker.frames builds exactly the bytes pamqp builds, only faster."""

from __future__ import annotations

from typing import Any

import pytest
from pamqp import commands, encode
from pamqp import frame as pamqp_frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from broker.celery_protocol import encode_task
from broker.frames import TableEncoder, body_frames, content_header_frame, publish_frame


def pamqp_header(channel: int, body_size: int, **properties: Any) -> bytes:
    return pamqp_frame.marshal(
        ContentHeader(0, body_size, commands.Basic.Properties(**properties)), channel)


TABLES: list[dict[str, Any]] = [
    {},
    {"a": None, "b": True, "c": False, "d": 0, "e": 1, "f": -1, "g": 300, "h": 70000,
     "i": 2**40, "j": 1.5, "k": "text", "l": "ünïcode"},
    {"nested": {"x": [1, "two", None, {"y": False}]}, "list": [None, None], "empty": {}},
    encode_task("5f0c2f3e-1111-4222-8333-444455556666", "calculate_distance", [3.0, 4.0],
                {}).headers,
]


@pytest.mark.parametrize("table", TABLES)
def test_a_table_encodes_to_the_same_bytes_as_pamqp(table: dict[str, Any]) -> None:
    encoder = TableEncoder(unique_keys=("id", "root_id"))
    assert encoder.encode(table) == encode.field_table(table)
    # and again from the cache
    assert encoder.encode(table) == encode.field_table(table)


def test_cached_entries_keep_true_and_one_apart() -> None:
    encoder = TableEncoder()
    assert encoder.encode({"v": 1}) == encode.field_table({"v": 1})
    assert encoder.encode({"v": True}) == encode.field_table({"v": True})
    assert encoder.encode({"v": [1]}) == encode.field_table({"v": [1]})
    assert encoder.encode({"v": [True]}) == encode.field_table({"v": [True]})


def test_the_entry_cache_stops_growing_at_its_limit() -> None:
    encoder = TableEncoder(max_entries=3)
    for n in range(10):
        assert encoder.encode({"n": n}) == encode.field_table({"n": n})
    assert len(encoder._entries) == 3


@pytest.mark.parametrize("properties", [
    {"content_type": "application/json"},
    {"content_type": "application/json", "delivery_mode": 2, "message_id": "m-1"},
    {"content_type": "application/json", "content_encoding": "utf-8",
     "headers": {"id": "abc", "retries": 0}, "delivery_mode": 2, "priority": 9,
     "correlation_id": "abc", "message_id": "abc"},
])
def test_a_content_header_is_the_same_as_pamqps(properties: dict[str, Any]) -> None:
    headers = properties.get("headers")
    ours = content_header_frame(
        7, 1234, content_type=properties["content_type"],
        headers=None if headers is None else TableEncoder().encode(headers),
        content_encoding=properties.get("content_encoding"),
        delivery_mode=properties.get("delivery_mode"), priority=properties.get("priority"),
        correlation_id=properties.get("correlation_id"), message_id=properties.get("message_id"))
    assert ours == pamqp_header(7, 1234, **properties)


def test_the_publish_frame_is_pamqps_mandatory_publish() -> None:
    expected = pamqp_frame.marshal(
        commands.Basic.Publish(exchange="cargo.tasks", routing_key="cargo", mandatory=True), 3)
    assert publish_frame(3, "cargo.tasks", "cargo") == expected


@pytest.mark.parametrize("size", [0, 1, 10, 11, 25])
def test_a_body_is_split_into_frames_like_pamqp_would(size: int) -> None:
    body = bytes(range(size))
    expected = b"".join(pamqp_frame.marshal(ContentBody(body[i:i + 10]), 2)
                        for i in range(0, size, 10))
    assert body_frames(2, body, 10) == expected
