"""py-amqp's internals, for the workers' pipelined event confirms (``workers.event_publisher``).

What it touches, written against amqp 5.4.2 and kombu 5.7.0 (pinned in
``pyproject.toml``):

* ``amqp.Channel._basic_publish``: the publish that does not wait. Once a
  connection has ``confirm_publish`` set, py-amqp's public ``basic_publish`` is
  ``basic_publish_confirm``, which blocks until that one message is confirmed;
* ``amqp.Channel.events["basic_ack"|"basic_nack"]``, the callbacks py-amqp's
  ``_on_basic_ack``/``_on_basic_nack`` call with ``(delivery_tag, multiple)``;
* ``amqp.Connection.sock``, reached through kombu's ``Connection.connection``,
  for an event loop to watch the socket for confirms.

Why: a confirm wait per event was most of a trivial task's cost. Writing
``started``/``progress`` without waiting and waiting only on the outcome took
the Cargo worker from 274-397 to 486-504 tasks/s (bench/RESULTS.md, "What was
changed for it", ``bench/drain.py``).

``tests/unit/test_adapters_pyamqp.py`` fails, naming amqp and its version, when an
upgrade changes any of this: re-measure, then update this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import amqp
import kombu

PINNED = {"amqp": "5.4.2", "kombu": "5.7.0"}

ConfirmCallback = Callable[[int, bool], None]


def open_confirm_channel(connection: kombu.Connection, on_ack: ConfirmCallback,
                         on_nack: ConfirmCallback) -> Any:
    """The connection's channel in confirm mode, its confirms going to the callbacks
    as ``(delivery_tag, multiple)``."""
    channel: Any = connection.default_channel  # pyamqp: an amqp.Channel
    channel.confirm_select()
    listen_for_confirms(channel, on_ack, on_nack)
    return channel


def listen_for_confirms(channel: Any, on_ack: ConfirmCallback,
                        on_nack: ConfirmCallback) -> None:
    """Have py-amqp call ``on_ack``/``on_nack`` for the channel's confirms (an
    ``amqp.Channel``: its stubs do not declare ``events``)."""
    channel.events["basic_ack"].add(on_ack)
    channel.events["basic_nack"].add(on_nack)


def publish_unconfirmed(channel: Any, body: bytes, *, exchange: str,
                        routing_key: str, content_type: str, delivery_mode: int) -> None:
    """Write one message without waiting for its confirm (it comes to the callbacks)."""
    message = amqp.Message(body, content_type=content_type, content_encoding="utf-8",
                           delivery_mode=delivery_mode)
    channel._basic_publish(message, exchange=exchange, routing_key=routing_key)


def socket_fileno(connection: kombu.Connection) -> int | None:
    """The connection's socket descriptor, or None when it has none."""
    sock = getattr(connection.connection, "sock", None)
    return sock.fileno() if sock is not None else None
