"""Publishing tasks and events with publisher confirms, errors mapped explicitly.

A publish returns only once RabbitMQ confirmed the message (it is in the quorum
queue, replicated). Everything else becomes one of two exceptions the gateway
maps to status codes: :class:`BrokerUnavailable` (503: not connected, channel
error, no confirm within the timeout, unroutable) and :class:`QueueFull` (429:
the queue's ``reject-publish`` overflow nacked it).
"""

from __future__ import annotations

import asyncio
import time

import aiormq
from kombu.transport.native_delayed_delivery import calculate_routing_key

from broker.celery_protocol import CONTENT_ENCODING, CONTENT_TYPE, TaskMessage
from broker.connection import BrokerConnection
from broker.events import CONTENT_TYPE as EVENT_CONTENT_TYPE
from broker.events import TaskEvent, encode_batch
from broker.topology import CELERY_DELAYED_EXCHANGE, EVENTS_EXCHANGE, TASKS_EXCHANGE
from broker.topology import event_routing_key as _event_routing_key

PERSISTENT = 2  # AMQP delivery mode


def _event_properties() -> aiormq.spec.Basic.Properties:
    # A fresh object each time: aiormq fills in a missing message_id in place.
    return aiormq.spec.Basic.Properties(content_type=EVENT_CONTENT_TYPE,
                                        delivery_mode=PERSISTENT)


class PublishFailed(Exception):
    """Base of publish failures; ``reason`` is a short machine-readable word."""

    reason = "publish_failed"


class BrokerUnavailable(PublishFailed):
    reason = "broker_unavailable"


class QueueFull(PublishFailed):
    reason = "queue_full"


class Publisher:
    """Publishes on the connection's confirm channel; never reports success unconfirmed."""

    def __init__(self, connection: BrokerConnection, timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout

    async def publish_task(self, message: TaskMessage, queue: str,
                           countdown: float | None = None) -> float:
        """Publish a task; returns the confirm latency in seconds."""
        exchange, routing_key = TASKS_EXCHANGE, queue
        if countdown is not None and countdown >= 1:
            # Quorum queues cannot hold ETA tasks in the worker, so a countdown
            # goes through Celery's native delayed delivery exchanges.
            exchange = CELERY_DELAYED_EXCHANGE
            routing_key = calculate_routing_key(int(countdown), queue)
        # Properties are built for aiormq directly: aio-pika's Message object
        # costs a measurable share of a submission on the gateway's hot path.
        properties = aiormq.spec.Basic.Properties(
            content_type=CONTENT_TYPE,
            content_encoding=CONTENT_ENCODING,
            delivery_mode=PERSISTENT,
            correlation_id=message.task_id,
            message_id=message.task_id,
            priority=message.priority,
            headers=message.headers,
        )
        return await self._publish(exchange, routing_key, message.body, properties)

    async def publish_event_batch(self, events: list[TaskEvent]) -> float:
        """Several events of one state and task name as one stream message."""
        first = events[0]
        return await self._publish(
            EVENTS_EXCHANGE, _event_routing_key(first.state, first.name), encode_batch(events),
            _event_properties())

    async def _publish(self, exchange: str, routing_key: str, body: bytes,
                       properties: aiormq.spec.Basic.Properties) -> float:
        channel = self._connection.channel
        if channel is None:
            raise BrokerUnavailable(
                f"not connected to the broker ({self._connection.last_error or 'reconnecting'})"
            )
        started = time.perf_counter()
        try:
            underlay = await channel.get_underlay_channel()
            await underlay.basic_publish(body, exchange=exchange, routing_key=routing_key,
                                         properties=properties, mandatory=True,
                                         timeout=self._timeout)
        except aiormq.exceptions.PublishError as exc:
            raise BrokerUnavailable(
                f"the broker could not route the message to {routing_key!r}"
            ) from exc
        except aiormq.exceptions.DeliveryError as exc:
            # A nack: with reject-publish overflow, the queue is at its length limit.
            raise QueueFull(f"the broker refused the message: {routing_key!r} is full") from exc
        except TimeoutError as exc:
            raise BrokerUnavailable(
                f"the broker did not confirm within {self._timeout:g}s"
            ) from exc
        except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError,
                ConnectionError, RuntimeError, asyncio.InvalidStateError) as exc:
            raise BrokerUnavailable(f"broker connection failed: {type(exc).__name__}") from exc
        return time.perf_counter() - started
