"""workers.pyamqp_adapter still holds for the installed py-amqp: the publish that does not
wait writes a Basic.Publish and returns, confirms reach the callbacks registered in
``Channel.events``, and kombu's connection still exposes py-amqp's socket (read, on a live
connection, by tests/integration/test_event_relay.py)."""

from __future__ import annotations

import contextlib
import inspect
import struct
import types
from typing import Any

import amqp
import kombu
from amqp import spec
from amqp.serialization import dumps

from tests.unit.adapter_pins import assert_pinned, changed
from workers import pyamqp_adapter
from workers.pyamqp_adapter import listen_for_confirms, publish_unconfirmed


def unconnected_channel() -> tuple[amqp.Channel, list[tuple[Any, ...]]]:
    """A py-amqp channel whose connection records the frames it would write (no socket)."""
    connection: Any = amqp.Connection("localhost:1")
    written: list[tuple[Any, ...]] = []
    connection.frame_writer = lambda *frame: written.append(frame)
    connection._transport = types.SimpleNamespace(  # what _basic_publish times its write with
        having_timeout=lambda _timeout: contextlib.nullcontext())
    return amqp.Channel(connection, 1), written


def broker_says(channel: amqp.Channel, method: tuple[int, int], argsig: str,
                args: tuple[Any, ...]) -> None:
    """Hand a method frame to the channel as py-amqp's frame reader does."""
    channel.dispatch_method(method, struct.pack(">HH", *method) + dumps(argsig, args), None)


def test_amqp_and_kombu_are_the_versions_the_adapter_was_written_against() -> None:
    assert_pinned(pyamqp_adapter)


def test_py_amqp_still_has_basic_publish_without_the_confirm_wait() -> None:
    basic_publish = getattr(amqp.Channel, "_basic_publish", None)
    assert basic_publish is not None, changed(
        "amqp", pyamqp_adapter, "Channel._basic_publish (gone)")
    parameters = list(inspect.signature(basic_publish).parameters)
    assert parameters[:4] == ["self", "msg", "exchange", "routing_key"], changed(
        "amqp", pyamqp_adapter, f"Channel._basic_publish's parameters ({parameters})")


def test_publishing_without_waiting_writes_one_publish_and_returns() -> None:
    channel, written = unconnected_channel()
    publish_unconfirmed(channel, b'{"a": 1}', exchange="cargo.events", routing_key="rk",
                        content_type="application/json", delivery_mode=2)
    problem = changed("amqp", pyamqp_adapter, "what Channel._basic_publish writes")
    assert len(written) == 1, problem
    _frame_type, channel_id, method, args, message = written[0]
    assert (channel_id, method) == (1, spec.Basic.Publish), problem
    assert b"cargo.events" in args, problem
    assert b"rk" in args, problem
    assert message.body == b'{"a": 1}', problem
    assert message.properties["content_type"] == "application/json", problem
    assert message.properties["delivery_mode"] == 2, problem


def test_confirms_reach_the_callbacks_registered_in_channel_events() -> None:
    channel, _ = unconnected_channel()
    heard: list[tuple[str, int, bool]] = []
    listen_for_confirms(channel, lambda tag, multiple: heard.append(("ack", tag, multiple)),
                        lambda tag, multiple: heard.append(("nack", tag, multiple)))
    broker_says(channel, spec.Basic.Ack, "Lb", (3, True))
    broker_says(channel, spec.Basic.Nack, "Lbb", (4, False, True))
    assert heard == [("ack", 3, True), ("nack", 4, False)], changed(
        "amqp", pyamqp_adapter, "how Channel hands Basic.Ack/Nack to Channel.events")


def test_kombu_still_reaches_py_amqps_socket() -> None:
    assert isinstance(inspect.getattr_static(amqp.Connection, "sock"), property), changed(
        "amqp", pyamqp_adapter, "Connection.sock")
    assert isinstance(inspect.getattr_static(kombu.Connection, "connection"), property), \
        changed("kombu", pyamqp_adapter, "Connection.connection (py-amqp's connection)")
