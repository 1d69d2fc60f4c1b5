"""The bridge's consumer: Dramatiq message in, confirmed Celery task out, then the ack.

At every (re)connect of the supervised connection (:class:`BrokerConnection`
declares Cargo's topology first) the bridge declares each bridged Dramatiq
queue exactly as Dramatiq does, adds its bindings (:mod:`bridge.queues`),
makes sure Celery's delayed-delivery exchanges exist, and consumes ``<queue>``
and ``<queue>.DQ`` with ``CARGO_BRIDGE_PREFETCH`` unacknowledged messages each.

It consumes only once its catalog reader (``broker.catalog_reader``) has
replayed the catalog stream: an actor is known iff some live worker announced a
task of that name, and the bridge imports no task code.

Each message is handled on its own (up to the prefetch at once):

1. parse and translate it (:mod:`bridge.translate`), with the announced task's
   hard time limit as the cap;
2. publish the Celery task on the connection's confirm channel to that task's
   own queue and wait for RabbitMQ's confirm (it is in the task's quorum queue,
   or in the delayed-delivery queues when it has an ``eta``). A task on Cargo's
   default queue is published with the Dramatiq queue's name as routing key
   (``bridge.queues`` binds it to the default queue), so a worker sees the
   Dramatiq queue as its queue and dead-letters it into Dramatiq's
   ``<queue>.XQ``; a task on a queue of its own is published to that queue, and
   its dead letters go to that queue's ``<queue>.XQ``;
3. only then acknowledge the Dramatiq message, and announce the task
   ``queued`` on the events stream.

A bridge killed anywhere before 3 leaves the Dramatiq message unacknowledged:
RabbitMQ delivers it again and it is published again under the same task id
(at least once; a kill between the confirm and the ack can run a task twice,
as with any at-least-once consumer). A publish that is not confirmed returns
the message to its queue (after ``CARGO_RECONNECT_INTERVAL``, so a full or
unreachable queue is not spun on). A message that can never run is published
unchanged to ``<queue>.XQ`` with Cargo's ``poison`` headers, confirmed, then
acknowledged; if even that publish fails it is rejected without requeue, and
RabbitMQ dead-letters it into the same ``<queue>.XQ`` (Dramatiq's queue
arguments): never dropped, never looping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import aio_pika
import kombu
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from kombu.transport.native_delayed_delivery import (
    declare_native_delayed_delivery_exchanges_and_queues,
)

from bridge.metrics import BridgeMetrics
from bridge.queues import BridgedQueue
from bridge.translate import Untranslatable, parse_message, translate
from broker.addresses import kombu_failover_url
from broker.announcer import Announcer
from broker.catalog_reader import CatalogReader
from broker.celery_protocol import task_origin
from broker.connection import BrokerConnection
from broker.deadletter import Reason, dead_letter_headers, identify
from broker.events import TaskEvent, TaskState, utc_now
from broker.publisher import Publisher, PublishFailed
from broker.settings import BridgeSettings
from broker.topology import DEAD_LETTER_EXCHANGE, dead_letter_queue_name

log = structlog.get_logger(__name__)

# How long a (re)connect waits for the catalog replay before trying again.
CATALOG_WAIT_SECONDS = 60.0


def declare_delayed_delivery(url: str, timeout: float) -> None:
    """Celery's native delayed-delivery exchanges and queues, as a Celery worker declares
    them (so a delayed task can be bridged before any worker has started)."""
    with kombu.Connection(url, connect_timeout=timeout) as connection:
        declare_native_delayed_delivery_exchanges_and_queues(connection, "quorum")


class Bridge:
    """Consumes the bridged Dramatiq queues on every connection the supervisor opens."""

    def __init__(self, settings: BridgeSettings, connection: BrokerConnection, publisher: Publisher,
                 announcer: Announcer, metrics: BridgeMetrics, queues: tuple[BridgedQueue, ...],
                 catalog: CatalogReader) -> None:
        self._settings = settings
        self._connection = connection
        self._publisher = publisher
        self._announcer = announcer
        self._metrics = metrics
        self._queues = queues
        self._catalog = catalog
        self._origin = task_origin()
        self._channel: AbstractChannel | None = None
        self._dead_letters: AbstractChannel | None = None
        self._consumers: list[tuple[aio_pika.abc.AbstractQueue, str]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def consuming(self) -> bool:
        """Connected, and consuming every bridged queue and delay queue."""
        channel = self._channel
        return (self._connection.ready and channel is not None and not channel.is_closed
                and len(self._consumers) == 2 * len(self._queues))

    def state(self) -> tuple[bool, list[str]]:
        """For the heartbeat: connected-and-consuming, and the consumed queues."""
        return self.consuming, [spec.name for q in self._queues for spec in q.consumed]

    async def on_connect(self, connection: AbstractConnection) -> None:
        """Declare the Dramatiq side and start consuming (a BrokerConnection hook)."""
        self._consumers = []
        await asyncio.to_thread(declare_delayed_delivery,
                                kombu_failover_url(self._settings.rabbitmq_urls),
                                self._settings.connect_timeout)
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self._settings.bridge_prefetch)
        dead_letters = await connection.channel(publisher_confirms=True, on_return_raises=True)
        task_queue = await channel.get_queue(self._settings.task_queue, ensure=True)
        consumed: list[tuple[aio_pika.abc.AbstractQueue, BridgedQueue]] = []
        for bridged in self._queues:
            for spec in bridged.dramatiq_queues:
                queue = await channel.declare_queue(spec.name, durable=True,
                                                    arguments=spec.arguments)
                for binding in spec.bindings:
                    await queue.bind(binding.exchange, binding.routing_key)
                if spec in bridged.consumed:
                    consumed.append((queue, bridged))
            for binding in bridged.task_queue_bindings:
                await task_queue.bind(binding.exchange, binding.routing_key)
            for link in bridged.exchange_bindings:
                destination = await channel.get_exchange(link.destination, ensure=True)
                await destination.bind(link.source, link.routing_key)
        self._channel, self._dead_letters = channel, dead_letters
        # Never translate before the catalog is known: a live worker's task would be poison.
        await asyncio.wait_for(self._catalog.caught_up.wait(), CATALOG_WAIT_SECONDS)
        if self._stopping:
            return
        for queue, bridged in consumed:
            tag = await queue.consume(self._receiver(bridged), no_ack=False)
            self._consumers.append((queue, tag))
        log.info("bridge.consuming", queues=[q.name for q, _ in self._consumers])

    def _receiver(self, bridged: BridgedQueue
                  ) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def on_message(message: AbstractIncomingMessage) -> None:
            task = asyncio.create_task(self._handle(bridged, message))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

        return on_message

    async def _handle(self, bridged: BridgedQueue, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        queue = bridged.name
        try:
            parsed = parse_message(message.body)
            entry = self._catalog.catalog.get(parsed.actor_name)
            known: tuple[str, ...] = ()
            limits: dict[str, float] = {}
            if entry is not None:
                known = (entry.name,)
                if entry.task.limits.time_limit is not None:
                    limits[entry.name] = entry.task.limits.time_limit
            translation = translate(parsed, queue=queue, known_tasks=known, time_limits=limits,
                                    now=utc_now(), origin=self._origin)
        except Untranslatable as exc:
            await self._poison(bridged, message, str(exc), started)
            return
        assert entry is not None  # translate refuses unknown actors
        # The default queue is reached through the Dramatiq queue's own binding (see above).
        route = queue if entry.queue == self._settings.task_queue else entry.queue
        try:
            if not await self._connection.wait_ready(self._settings.publish_timeout):
                raise PublishFailed("not connected to the broker")
            await self._publisher.publish_task(translation.task, route,
                                               countdown=translation.countdown)
        except PublishFailed as exc:
            # It goes back to the queue.
            log.warning("bridge.publish_failed", task=translation.task.name,
                        task_id=translation.task.task_id, queue=queue, error=str(exc))
            self._metrics.handled(queue, "requeued")
            await asyncio.sleep(self._settings.reconnect_interval)
            await self._settle(message, requeue=True)
            return
        if not await self._settle(message):
            return  # redelivered: bridged again, same task id
        self._metrics.handled(queue, "bridged", time.perf_counter() - started)
        task = translation.task
        self._announcer.announce(TaskEvent(task.task_id, task.name, TaskState.QUEUED, utc_now(),
                                           queue=route, retries=task.headers.get("retries")))

    async def _settle(self, message: AbstractIncomingMessage, *,
                      requeue: bool | None = None) -> bool:
        """Ack (``requeue`` None) or nack; False when the channel is gone (redelivered)."""
        try:
            if requeue is None:
                await message.ack()
            else:
                await message.nack(requeue=requeue)
        except Exception as exc:
            # RabbitMQ delivers it again.
            log.warning("bridge.settle_failed", error_type=type(exc).__name__, error=str(exc))
            return False
        return True

    async def _poison(self, bridged: BridgedQueue, message: AbstractIncomingMessage,
                      problem: str, started: float) -> None:
        queue = bridged.name
        error = {"type": "PoisonMessage", "message": problem}
        headers = dead_letter_headers(message.headers, reason=Reason.POISON, queue=queue,
                                      error=error)
        channel = self._dead_letters
        try:
            if channel is None or channel.is_closed:
                raise ConnectionError("no dead-letter channel")
            exchange = await channel.get_exchange(DEAD_LETTER_EXCHANGE, ensure=False)
            await exchange.publish(
                aio_pika.Message(message.body, headers=headers,
                                 content_type=message.content_type,
                                 content_encoding=message.content_encoding,
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                 message_id=message.message_id, priority=message.priority),
                routing_key=dead_letter_queue_name(queue), mandatory=True,
                timeout=self._settings.publish_timeout)
        except Exception as exc:
            # Not lost, not looping: rejected without requeue, RabbitMQ dead-letters
            # it into <queue>.XQ itself (Dramatiq's queue arguments).
            log.error("bridge.poison_dead_letter_failed", queue=queue, error=str(exc),
                      rejected_to=dead_letter_queue_name(queue))
            if await self._settle(message, requeue=False):
                self._metrics.handled(queue, "rejected", time.perf_counter() - started)
            return
        if not await self._settle(message):
            return
        self._metrics.handled(queue, "poison", time.perf_counter() - started)
        task_id, name = identify(message.headers, message.body,
                                 {"message_id": message.message_id})
        log.error("bridge.poison_dead_lettered", queue=queue, problem=problem)
        if task_id is not None:
            self._announcer.announce(TaskEvent(task_id, name or "unknown",
                                               TaskState.DEAD_LETTERED, utc_now(), queue=queue,
                                               reason=Reason.POISON.value, error=error))

    async def stop(self, timeout: float) -> None:
        """Stop taking messages; let the ones in hand finish (bounded)."""
        self._stopping = True
        for queue, tag in self._consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        self._consumers = []
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=timeout)
