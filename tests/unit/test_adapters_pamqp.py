"""broker.frames still holds for the installed pamqp: the functions it calls are there, and a
whole task publish it assembles is byte for byte what pamqp marshals.
(tests/unit/test_frames.py compares each part for every property and value type used.)"""

from __future__ import annotations

import pytest
from pamqp import commands, constants, encode
from pamqp import frame as pamqp_frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from broker import frames
from broker.celery_protocol import CONTENT_ENCODING, CONTENT_TYPE, encode_task
from broker.frames import TableEncoder, body_frames, content_header_frame, publish_frame
from tests.unit.adapter_pins import assert_pinned, changed


def test_pamqp_is_the_version_the_adapter_was_written_against() -> None:
    assert_pinned(frames)


@pytest.mark.parametrize(("module", "name"), [
    (encode, "short_string"), (encode, "encode_table_value"), (encode, "field_table"),
    (pamqp_frame, "marshal"), (constants, "FRAME_END"), (constants, "FRAME_BODY"),
    (constants, "FRAME_HEADER"),
])
def test_pamqp_still_has_each_function_and_constant_the_adapter_uses(
        module: object, name: str) -> None:
    assert hasattr(module, name), changed(
        "pamqp", frames, f"{getattr(module, '__name__', module)}.{name} (gone)")


def test_pamqp_still_encodes_a_table_sorted_by_key() -> None:
    assert encode.field_table({"b": 1, "a": 2}) == encode.field_table({"a": 2, "b": 1}), \
        changed("pamqp", frames, "the order of a field table's entries")


def test_a_whole_task_publish_is_byte_for_byte_pamqps() -> None:
    message = encode_task("5f0c2f3e-1111-4222-8333-444455556666", "calculate_distance",
                          [3.0, 4.0], {"unit": "km"})
    body = message.body * 40  # more than one body frame at the size below
    max_size = 1000
    ours = b"".join((
        publish_frame(5, "cargo.tasks", "cargo"),
        content_header_frame(
            5, len(body), content_type=CONTENT_TYPE, content_encoding=CONTENT_ENCODING,
            headers=TableEncoder(unique_keys=("id",)).encode(message.headers), delivery_mode=2,
            priority=message.priority, correlation_id=message.task_id,
            message_id=message.task_id),
        body_frames(5, body, max_size),
    ))
    properties = commands.Basic.Properties(
        content_type=CONTENT_TYPE, content_encoding=CONTENT_ENCODING, headers=message.headers,
        delivery_mode=2, priority=message.priority, correlation_id=message.task_id,
        message_id=message.task_id)
    theirs = b"".join((
        pamqp_frame.marshal(commands.Basic.Publish(exchange="cargo.tasks", routing_key="cargo",
                                                   mandatory=True), 5),
        pamqp_frame.marshal(ContentHeader(0, len(body), properties), 5),
        *(pamqp_frame.marshal(ContentBody(body[i:i + max_size]), 5)
          for i in range(0, len(body), max_size)),
    ))
    assert ours == theirs, changed("pamqp", frames, "the bytes of a Basic.Publish, its content "
                                   "header or its body frames")
