"""aiormq's channel internals, for the gateway's batched publish (``broker.publisher``).

What it touches, written against aiormq 7.2.4 (pinned in ``pyproject.toml``):

* ``Channel.write_queue``, the queue of ``aiormq.abc.ChannelFrame`` the
  connection's writer task sends: one frame batch is put there as one item;
* ``Channel.max_content_size``, the largest body frame payload the connection
  negotiated (what ``basic_publish`` splits bodies by);
* the publisher-confirm bookkeeping aiormq's frame reader settles:
  ``Channel.delivery_tag`` (the last tag given), ``Channel.confirmations``
  (tag -> future, resolved on ``Basic.Ack``/``Nack`` and failed on
  ``Basic.Return``) and ``Channel.message_id_delivery_tag`` (how a
  ``Basic.Return`` finds its publish's tag, by message id).

Why: aiormq's public ``Channel.basic_publish`` hands every message to the
writer on its own, so each publish was one ``send``, one RabbitMQ wake-up and
several loop hops. Writing one loop iteration's publishes as one batch (with
``broker.frames``) took a submission from 1,288,552 to 818,801 instructions
and from 2.07 to 1.23 socket writes (bench/RESULTS.md, "What changed, and what
each change bought", item 1).

``tests/unit/test_adapters_aiormq.py`` fails, naming aiormq and its version,
when an upgrade changes any of this: re-measure, then update this module.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import Any

import aiormq
from aiormq.abc import ChannelFrame

PINNED = {"aiormq": "7.2.4"}


def max_body_frame(channel: aiormq.Channel) -> int:
    """The largest body frame payload the connection negotiated."""
    return int(channel.max_content_size)


def writer_busy(channel: aiormq.Channel) -> bool:
    """Whether the connection's writer queue is full (the socket is behind)."""
    return bool(channel.write_queue.full())


def fail_unsettled(channel: aiormq.Channel, error: Callable[[], BaseException]) -> None:
    """Fail every confirm the channel still waits on with ``error()``.

    Needed because the confirmations are plain loop futures rather than
    aiormq's ``channel.create_future()``, which aiormq would fail itself on
    close; its bookkeeping was a measurable share of a publish (bench/RESULTS.md,
    "What changed, and what each change bought", item 3).
    """
    for confirmation in channel.confirmations.values():
        if not confirmation.done():
            confirmation.set_exception(error())


def write_confirmed(channel: aiormq.Channel,
                    publishes: Sequence[tuple[str, asyncio.Future[Any]]],
                    frames: bytes) -> None:
    """Queue ``frames`` (the publishes, in order) to the writer as one write, and
    register each ``(message id, confirmation)`` under its delivery tag.

    One synchronous step, so the tags are in the order RabbitMQ sees the messages.
    """
    confirmations = channel.confirmations
    tags_by_message_id = channel.message_id_delivery_tag
    for message_id, confirmation in publishes:
        channel.delivery_tag += 1
        tag = channel.delivery_tag
        confirmations[tag] = confirmation
        tags_by_message_id[message_id] = tag
        confirmation.add_done_callback(
            functools.partial(_forget_message_id, tags_by_message_id, message_id, tag))
    channel.write_queue.put_nowait(ChannelFrame(payload=frames, should_close=False))


def _forget_message_id(tags_by_message_id: dict[str, int], message_id: str, tag: int,
                       _: asyncio.Future[Any]) -> None:
    """A settled publish's message id is no longer needed to match a ``Basic.Return``."""
    if tags_by_message_id.get(message_id) == tag:
        del tags_by_message_id[message_id]
