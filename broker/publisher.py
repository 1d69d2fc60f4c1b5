"""Publishing tasks and events with publisher confirms, errors mapped explicitly.

A publish returns only once RabbitMQ confirmed the message (it is in the quorum
queue, replicated). Everything else becomes one of three exceptions the gateway
maps to status codes: :class:`BrokerUnavailable` (503: the message was never
written to the broker's socket — not connected, or not written within the
timeout — or the broker returned it unroutable), :class:`QueueFull` (429: the
queue's ``reject-publish`` overflow nacked it) and :class:`OutcomeUnknown` (the
message was written but the channel ended before its confirm: it may be in the
queue).

The timeout bounds only getting the message onto the wire. Once written, the
publisher waits for the broker's answer or the channel's end, up to
``outcome_timeout`` (then :class:`OutcomeUnknown` too): answering "not accepted"
for a written message would be a lie the broker can contradict by running the
task.

The publisher gathers the publishes of one event-loop iteration and hands them
to aiormq's writer as one write, with frames built by :mod:`broker.frames`
(bench/RESULTS.md, "What changed, and what each change bought": 1,288,552 →
818,801 instructions per submission). Everything that touches aiormq's channel
internals for it is in :mod:`broker.aiormq_adapter`. Confirms stay aiormq's:
each message gets its delivery tag and a future aiormq resolves on
``Basic.Ack``/``Nack``/``Return``. Delivery tags are assigned only when a batch
is written, so they stay in the order RabbitMQ sees the messages.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import aiormq
from kombu.transport.native_delayed_delivery import calculate_routing_key

from broker.aiormq_adapter import fail_unsettled, max_body_frame, write_confirmed, writer_busy
from broker.celery_protocol import CONTENT_ENCODING, CONTENT_TYPE, TaskMessage
from broker.connection import BrokerConnection
from broker.events import CONTENT_TYPE as EVENT_CONTENT_TYPE
from broker.events import TaskEvent, encode_batch
from broker.frames import TableEncoder, body_frames, content_header_frame, publish_frame
from broker.topology import CELERY_DELAYED_EXCHANGE, EVENTS_EXCHANGE, PERSISTENT, TASKS_EXCHANGE
from broker.topology import event_routing_key as _event_routing_key

# Celery headers that differ in every message: not worth caching (the header cache
# is part of bench/RESULTS.md "What changed, and what each change bought", item 2).
_UNIQUE_HEADERS = ("id", "root_id", "argsrepr", "kwargsrepr", "eta", "expires")
# A writer queue that is full means the socket is behind: retry the batch soon.
_WRITER_BUSY_RETRY = 0.001


# (channel, frames, message id, confirmation, deadline to be written by) of one publish.
_Pending = tuple[aiormq.Channel, bytes, str, "asyncio.Future[Any]", float]


class PublishFailed(Exception):
    """Base of publish failures; ``reason`` is a short machine-readable word."""

    reason = "publish_failed"


class BrokerUnavailable(PublishFailed):
    reason = "broker_unavailable"


class QueueFull(PublishFailed):
    reason = "queue_full"


class OutcomeUnknown(PublishFailed):
    """Written to the broker, but the channel ended before it confirmed or refused."""

    reason = "outcome_unknown"


class Publisher:
    """Publishes on the connection's confirm channel; never reports success unconfirmed."""

    def __init__(self, connection: BrokerConnection, timeout: float,
                 outcome_timeout: float = 30.0) -> None:
        self._connection = connection
        self._timeout = timeout
        self._outcome_timeout = outcome_timeout
        self._headers = TableEncoder(unique_keys=_UNIQUE_HEADERS)
        self._event_ids = (f"cargo-event-{n}" for n in itertools.count())
        # Publishes waiting for this iteration's write.
        self._pending: list[_Pending] = []
        self._flush_scheduled = False
        self._watched: aiormq.Channel | None = None

    async def publish_task(self, message: TaskMessage, queue: str,
                           countdown: float | None = None) -> float:
        """Publish a task; returns the confirm latency in seconds."""
        exchange, routing_key = TASKS_EXCHANGE, queue
        if countdown is not None and countdown >= 1:
            # Quorum queues cannot hold ETA tasks in the worker, so a countdown
            # goes through Celery's native delayed delivery exchanges.
            exchange = CELERY_DELAYED_EXCHANGE
            routing_key = calculate_routing_key(int(countdown), queue)
        channel = self._channel()
        number = channel.number
        frames = b"".join((
            publish_frame(number, exchange, routing_key),
            content_header_frame(
                number, len(message.body), content_type=CONTENT_TYPE,
                content_encoding=CONTENT_ENCODING, headers=self._headers.encode(message.headers),
                delivery_mode=PERSISTENT, priority=message.priority,
                correlation_id=message.task_id, message_id=message.task_id),
            body_frames(number, message.body, max_body_frame(channel)),
        ))
        return await self._publish(channel, frames, message.task_id, routing_key)

    async def publish_event_batch(self, events: list[TaskEvent]) -> float:
        """Several events of one state and task name as one stream message."""
        first = events[0]
        body = encode_batch(events)
        channel = self._channel()
        number = channel.number
        # aiormq finds a returned message's publish by its message id.
        message_id = next(self._event_ids)
        routing_key = _event_routing_key(first.state, first.name)
        frames = b"".join((
            publish_frame(number, EVENTS_EXCHANGE, routing_key),
            content_header_frame(number, len(body), content_type=EVENT_CONTENT_TYPE,
                                 delivery_mode=PERSISTENT, message_id=message_id),
            body_frames(number, body, max_body_frame(channel)),
        ))
        return await self._publish(channel, frames, message_id, routing_key)

    def _channel(self) -> aiormq.Channel:
        channel = self._connection.confirm_channel
        if channel is None or channel.is_closed:
            raise BrokerUnavailable(
                f"not connected to the broker ({self._connection.last_error or 'reconnecting'})"
            )
        if channel is not self._watched:
            self._watched = channel
            channel.closing.add_done_callback(lambda _: self._fail_unconfirmed(channel))
        return channel

    @staticmethod
    def _fail_unconfirmed(channel: aiormq.Channel) -> None:
        """The channel closed: no confirm will come for what it still waits on."""
        fail_unsettled(channel, lambda: OutcomeUnknown(
            "the broker connection closed after the message was sent and before "
            "the broker confirmed it"))

    async def _publish(self, channel: aiormq.Channel, frames: bytes, message_id: str,
                       routing_key: str) -> float:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        # A plain loop future, not aiormq's create_future(): RESULTS.md "What changed, and
        # what each change bought", item 3 (failed on close by aiormq_adapter.fail_unsettled).
        confirmation: asyncio.Future[Any] = loop.create_future()
        self._pending.append((channel, frames, message_id, confirmation,
                              loop.time() + self._timeout))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        try:
            await confirmation
        except aiormq.exceptions.PublishError as exc:
            raise BrokerUnavailable(
                f"the broker could not route the message to {routing_key!r}"
            ) from exc
        except aiormq.exceptions.DeliveryError as exc:
            # A nack: with reject-publish overflow, the queue is at its length limit.
            raise QueueFull(f"the broker refused the message: {routing_key!r} is full") from exc
        except PublishFailed:
            raise
        except Exception as exc:
            # aiormq failed the confirmation because the channel or connection
            # closed. _flush registers a confirmation only as it writes it, so
            # the message may have reached the broker.
            raise OutcomeUnknown(f"broker connection failed after the message was sent: "
                                 f"{type(exc).__name__}") from exc
        return time.perf_counter() - started

    def _flush(self) -> None:
        """Write this iteration's publishes as one frame batch and start their confirm timer."""
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        live = [item for item in batch if not item[3].done()]
        channel = self._connection.confirm_channel
        stale = [item for item in live if item[0] is not channel]
        for _, _, _, confirmation, _ in stale:  # the channel they were built for is gone
            confirmation.set_exception(
                BrokerUnavailable("the broker connection was lost before the message was sent"))
        batch = [item for item in live if item[0] is channel]
        if not batch or channel is None:
            return
        if writer_busy(channel):
            # No delivery tag is assigned yet, so trying again later keeps the order;
            # what waited longer than the timeout is not sent at all (a sure 503).
            now = asyncio.get_running_loop().time()
            for _, _, _, confirmation, deadline in batch:
                if deadline <= now:
                    confirmation.set_exception(BrokerUnavailable(
                        f"the message could not be sent to the broker within "
                        f"{self._timeout:g}s"))
            self._pending[:0] = [item for item in batch if not item[3].done()]
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(_WRITER_BUSY_RETRY, self._flush)
            return
        write_confirmed(channel, [(item[2], item[3]) for item in batch],
                        b"".join(item[1] for item in batch))
        asyncio.get_running_loop().call_later(
            self._outcome_timeout, self._give_up, [item[3] for item in batch])

    def _give_up(self, confirmations: list[asyncio.Future[Any]]) -> None:
        """Written long ago and still neither confirmed nor refused: say so.
        (A confirm that still comes is dropped by aiormq, with a warning.)"""
        for confirmation in confirmations:
            if not confirmation.done():
                confirmation.set_exception(OutcomeUnknown(
                    f"the broker did not answer within {self._outcome_timeout:g}s "
                    "after the message was sent"))

