"""The dead-letter queues (``<queue>.XQ``) of one topology: list, replay, purge, depth.

How each works, and why, is described in ``gateway/deadletters_api.py`` (the routes).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from broker.celery_protocol import CONTENT_ENCODING, CONTENT_TYPE
from broker.connection import BrokerConnection
from broker.deadletter import DeadLetter, identify, parse_dead_letter, replay_headers
from broker.management import ManagementClient
from broker.publisher import BrokerUnavailable, QueueFull
from broker.settings import BrokerSettings
from broker.topology import TASKS_EXCHANGE, Topology, dead_letter_queue_name
from gateway.jsonbody import decode_json
from gateway.metrics import GatewayMetrics
from gateway.responses import DeadLetter as DeadLetterItem
from gateway.side_channels import side_channel

# A listing looks at each dead-letter queue's first this many messages.
LIST_SCAN = 10_000
# Replay looks at most this many messages deep for the task id.
REPLAY_SCAN = 10_000
AMQP_TIMEOUT = 5.0


Key = tuple[str, str]



OpenChannel = Callable[[], contextlib.AbstractAsyncContextManager[AbstractChannel]]


class PassiveChannels:
    """One channel at a time for passive declares of queues that may not exist.

    RabbitMQ closes a channel whose passive declare names a missing queue, so a miss
    opens the next channel; every channel opened closes with ``stack`` (closing puts
    back what was taken and not acknowledged).
    """

    def __init__(self, stack: contextlib.AsyncExitStack, open_channel: OpenChannel) -> None:
        self._stack = stack
        self._open_channel = open_channel
        self._channel: AbstractChannel | None = None

    @property
    def channel(self) -> AbstractChannel:
        assert self._channel is not None, "open() first"
        return self._channel

    async def open(self) -> AbstractChannel:
        self._channel = await self._stack.enter_async_context(self._open_channel())
        return self._channel

    async def existing(self, name: str) -> AbstractQueue | None:
        """The queue ``name``, or None (and a fresh channel) when it does not exist."""
        try:
            return await self.channel.declare_queue(name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            await self.open()
            return None


def _key(letter: DeadLetter) -> Key:
    when = letter.dead_lettered_at.isoformat() if letter.dead_lettered_at else ""
    return (when, letter.task_id or "")


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the queue (its index in the listing) and the last entry's key."""

    queue_index: int
    key: Key | None

    def encode(self) -> str:
        doc = json.dumps([self.queue_index, *(self.key or ())], separators=(",", ":"))
        return base64.urlsafe_b64encode(doc.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises ValueError for anything but a cursor :meth:`encode` wrote."""
        try:
            # decode_json: a client's cursor may be any JSON, e.g. nested 1000 deep.
            doc = decode_json(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (ValueError, TypeError):
            raise ValueError("not a cursor") from None
        if (not isinstance(doc, list) or len(doc) not in (1, 3) or not isinstance(doc[0], int)
                or doc[0] < 0 or not all(isinstance(part, str) for part in doc[1:])):
            raise ValueError("not a cursor")
        return cls(doc[0], (doc[1], doc[2]) if len(doc) == 3 else None)


@dataclass
class Page:
    items: list[DeadLetterItem] = field(default_factory=list)
    next: Cursor | None = None


@dataclass
class Replayed:
    task_id: str
    name: str | None
    queue: str


def _payload(message: dict[str, Any]) -> bytes:
    payload = message.get("payload") or ""
    if message.get("payload_encoding") == "base64":
        return base64.b64decode(payload)
    return str(payload).encode()


def _properties(message: AbstractIncomingMessage) -> dict[str, Any]:
    return {"content_type": message.content_type, "content_encoding": message.content_encoding,
            "correlation_id": message.correlation_id, "message_id": message.message_id,
            "priority": message.priority}


class DeadLetters:
    """The dead-letter queues of one topology, over the management API and AMQP."""

    def __init__(self, settings: BrokerSettings, topology: Topology, broker: BrokerConnection,
                 management: ManagementClient, metrics: GatewayMetrics) -> None:
        self._settings = settings
        self._topology = topology
        self._broker = broker
        self._management = management
        self._metrics = metrics
        self._refreshing: asyncio.Future[None] | None = None

    @property
    def queues(self) -> list[str]:
        """The task queues whose dead letters Cargo keeps, in listing order."""
        return [spec.name for spec in self._topology.task_queues]

    async def page(self, queues: list[str], reason: str | None, limit: int,
                   cursor: Cursor | None) -> Page:
        """One page of dead letters, in (dead-lettered time, task id) order.

        Every read takes each queue's first :data:`LIST_SCAN` messages (reading
        puts them back, not necessarily in the same order, so positions are no
        cursor) and orders them itself; the cursor is the last entry's key.
        """
        page = Page()
        first = cursor.queue_index if cursor is not None else 0
        for index in range(first, len(queues)):
            queue = queues[index]
            after = cursor.key if cursor is not None and index == first else None
            messages = await self._management.get_messages(
                self._settings.vhost, dead_letter_queue_name(queue), LIST_SCAN)
            letters = []
            for message in messages:
                properties = message.get("properties") or {}
                letter = parse_dead_letter(_payload(message), properties.get("headers"),
                                           properties, queue)
                if reason is None or letter.reason == reason:
                    letters.append((_key(letter), letter))
            letters.sort(key=lambda pair: pair[0])
            remaining = [pair for pair in letters if after is None or pair[0] > after]
            room = limit - len(page.items)
            # Shaped by the broker's side (which does not import the gateway's shapes);
            # the drift test holds it to gateway.responses.DeadLetter.
            page.items.extend(cast(DeadLetterItem, letter.to_item())
                              for _, letter in remaining[:room])
            if len(remaining) > room:
                page.next = Cursor(index, remaining[room - 1][0])
                return page
            if len(page.items) == limit:
                if index + 1 < len(queues):
                    page.next = Cursor(index + 1, None)
                return page
        return page

    def _channel(self, confirms: bool = False,
                 ) -> contextlib.AbstractAsyncContextManager[AbstractChannel]:
        """A side channel on the gateway's connection (``BrokerUnavailable`` while there
        is none; ``TimeoutError``, which the routes answer as 503, if it does not open)."""
        connection = self._broker.connection
        if connection is None:
            raise BrokerUnavailable(
                f"not connected to the broker ({self._broker.last_error or 'reconnecting'})")
        return side_channel(connection, open_timeout=AMQP_TIMEOUT,
                            publisher_confirms=confirms, on_return_raises=confirms)

    async def _republish(self, channel: AbstractChannel, message: AbstractIncomingMessage,
                         queue: str) -> None:
        """The original message to its task queue again, confirmed (raises PublishFailed)."""
        exchange = await channel.get_exchange(TASKS_EXCHANGE, ensure=False)
        try:
            await exchange.publish(
                aio_pika.Message(
                    message.body, headers=replay_headers(message.headers),
                    content_type=message.content_type or CONTENT_TYPE,
                    content_encoding=message.content_encoding or CONTENT_ENCODING,
                    correlation_id=message.correlation_id, message_id=message.message_id,
                    priority=message.priority, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=queue, mandatory=True, timeout=self._settings.publish_timeout)
        except aiormq.exceptions.DeliveryError as exc:
            if isinstance(exc, aiormq.exceptions.PublishError):
                raise BrokerUnavailable(f"the broker could not route to {queue!r}") from exc
            raise QueueFull(f"the broker refused the message: {queue!r} is full") from exc
        except TimeoutError as exc:
            raise BrokerUnavailable(
                f"the broker did not confirm within {self._settings.publish_timeout:g}s"
            ) from exc

    async def replay(self, task_id: str, queues: list[str]) -> Replayed | None:
        """Republish the dead letter with ``task_id``; None when no queue holds it."""
        # A confirm channel of its own: the republish waits for the broker's
        # confirm before the dead letter is acknowledged. Closing the channels (the
        # stack's end) puts every other message they took back, in order.
        async with contextlib.AsyncExitStack() as stack:
            channels = PassiveChannels(stack, lambda: self._channel(confirms=True))
            await channels.open()
            for queue in queues:
                dlq = await channels.existing(dead_letter_queue_name(queue))
                if dlq is None:
                    continue
                for _ in range(REPLAY_SCAN):
                    message = await dlq.get(no_ack=False, fail=False, timeout=AMQP_TIMEOUT)
                    if message is None:
                        break
                    properties = _properties(message)
                    found, name = identify(message.headers, message.body, properties)
                    if found != task_id:
                        continue
                    await self._republish(channels.channel, message, queue)
                    await message.ack()
                    return Replayed(task_id, name, queue)
        return None

    async def purge(self, queue: str) -> int:
        async with self._channel() as channel:
            try:
                dlq = await channel.declare_queue(dead_letter_queue_name(queue), passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                return 0
            result = await dlq.purge(timeout=AMQP_TIMEOUT)
            return int(result.message_count or 0)

    async def refresh_depths_within(self, timeout: float) -> None:
        """Refresh the gauges, waiting at most ``timeout``: a scrape that gives up
        stops waiting but never cancels the refresh (a channel cancelled mid-open
        costs the whole connection), and scrapes share the one under way."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self.refresh_depths())
        refreshing = self._refreshing
        done, _ = await asyncio.wait({refreshing}, timeout=timeout)
        if not done:
            raise TimeoutError(f"the broker did not answer within {timeout:g}s")
        refreshing.result()

    async def refresh_depths(self) -> None:
        """Set the dead-letter depth, queue length and consumer gauges from RabbitMQ
        (exact, via passive declares)."""
        if self._broker.connection is None:
            return
        async with contextlib.AsyncExitStack() as stack:
            channels = PassiveChannels(stack, self._channel)
            await channels.open()
            for queue in self.queues:
                dlq = await channels.existing(dead_letter_queue_name(queue))
                if dlq is None:
                    continue
                count = dlq.declaration_result.message_count
                self._metrics.dead_letter_depth.labels(queue).set(count or 0)
                tasks = await channels.existing(queue)
                if tasks is None:
                    continue
                result = tasks.declaration_result
                self._metrics.queue_length.labels(queue).set(result.message_count or 0)
                self._metrics.queue_consumers.labels(queue).set(result.consumer_count or 0)
