"""Real catalog announcements on the real broker, for tests of gateways and the bridge.

:func:`announce` publishes a :class:`broker.catalog.Announcement` to the
``cargo.catalog`` exchange of the settings' vhost exactly as a worker does
(``broker.catalog``), so a gateway or bridge reading the stream learns the
tasks. :func:`builtin_tasks` builds the built-in tasks' announcement from the
plain functions of ``workers.tasks`` with ``workers.schemas.arguments_schema``,
as a real worker announces them; tests may import task code, gateways may not.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import aio_pika

from broker.catalog import AnnouncedTask, Announcement, TaskLimits
from broker.settings import Settings
from broker.topology import build_topology

TEST_ANNOUNCER = "test-announcer"
# The workers' defaults (broker.settings / workers.policy) for the built-in tasks.
DEFAULT_TIME_LIMIT = 600.0
LONG_TIME_LIMIT = 3660.0
DEFAULT_MEMORY_LIMIT_MB = 256
DEFAULT_MAX_RETRIES = 3


def announced_task(func: Callable[..., Any], *, name: str | None = None, queue: str = "cargo",
                   time_limit: float | None = DEFAULT_TIME_LIMIT,
                   memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB,
                   max_retries: int = DEFAULT_MAX_RETRIES) -> AnnouncedTask:
    """``func`` as a worker announces it: its arguments schema and first doc line."""
    from workers.schemas import arguments_schema  # task-side code, tests only

    name = name or func.__name__
    doc = (inspect.getdoc(func) or "").strip().splitlines()
    return AnnouncedTask(
        name=name, queue=queue, schema=arguments_schema(func, title=name),
        doc=doc[0] if doc else None,
        limits=TaskLimits(time_limit=time_limit, memory_limit_mb=memory_limit_mb,
                          max_retries=max_retries))


def builtin_tasks(queue: str = "cargo") -> tuple[AnnouncedTask, ...]:
    """calculate_distance, sleep and memory_leak_task as a default worker announces them."""
    from workers import tasks

    return (
        announced_task(tasks.calculate_distance, queue=queue),
        announced_task(tasks.sleep, queue=queue, time_limit=LONG_TIME_LIMIT),
        announced_task(tasks.memory_leak_task, queue=queue, time_limit=LONG_TIME_LIMIT,
                       max_retries=0),
    )


def task_with_schema(name: str, schema: dict[str, Any], *, queue: str = "cargo",
                     doc: str | None = None, time_limit: float | None = DEFAULT_TIME_LIMIT
                     ) -> AnnouncedTask:
    """A task of any name with a hand-written arguments schema (no code anywhere)."""
    return AnnouncedTask(name=name, queue=queue, schema=schema, doc=doc,
                         limits=TaskLimits(time_limit=time_limit,
                                           memory_limit_mb=DEFAULT_MEMORY_LIMIT_MB,
                                           max_retries=DEFAULT_MAX_RETRIES))


def announcement(settings: Settings, tasks: Iterable[AnnouncedTask], *,
                 worker: str = TEST_ANNOUNCER, ttl: float = 3600,
                 started_at: datetime | None = None, announced_at: datetime | None = None,
                 withdrawn: bool = False, vhost: str | None = None) -> Announcement:
    tasks = tuple(tasks)
    now = datetime.now(UTC)
    return Announcement(worker=worker, vhost=vhost or settings.vhost,
                        started_at=started_at or now, announced_at=announced_at or now,
                        ttl=ttl, queues=(),  # it consumes nothing
                        tasks=tasks, withdrawn=withdrawn)


async def publish_catalog_message(settings: Settings, body: bytes) -> None:
    """Publish ``body`` (anything: tests send garbage too) to the vhost's catalog
    stream, confirmed; declares the catalog exchange and stream first (as
    ``broker.topology`` has them), as a worker's topology would."""
    topology = build_topology(settings)
    exchange_spec, stream_spec = topology.catalog_exchange, topology.catalog_stream
    connection = await aio_pika.connect(settings.rabbitmq_urls[0])
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            exchange_spec.name, aio_pika.ExchangeType(exchange_spec.type),
            durable=exchange_spec.durable, arguments=exchange_spec.arguments or None)
        stream = await channel.declare_queue(stream_spec.name, durable=stream_spec.durable,
                                             arguments=stream_spec.arguments)
        for binding in stream_spec.bindings:
            await stream.bind(binding.exchange, binding.routing_key)
        await exchange.publish(aio_pika.Message(body, content_type="application/json",
                                                delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                               routing_key="")


async def announce(settings: Settings, tasks: Iterable[AnnouncedTask], *,
                   worker: str = TEST_ANNOUNCER, ttl: float = 3600,
                   started_at: datetime | None = None, announced_at: datetime | None = None,
                   withdrawn: bool = False, vhost: str | None = None) -> Announcement:
    """Announce ``tasks`` as worker ``worker`` of the settings' vhost (or withdraw)."""
    doc = announcement(settings, tasks, worker=worker, ttl=ttl, started_at=started_at,
                       announced_at=announced_at, withdrawn=withdrawn, vhost=vhost)
    await publish_catalog_message(settings, doc.encode())
    return doc


async def withdraw(settings: Settings, *, worker: str = TEST_ANNOUNCER,
                   started_at: datetime | None = None) -> Announcement:
    """The worker's withdrawal (as a worker sends when it stops)."""
    return await announce(settings, (), worker=worker, withdrawn=True, started_at=started_at)


async def announce_builtin_tasks(settings: Settings) -> Announcement:
    """The built-in tasks on the settings' task queue (``CARGO_TASK_QUEUE``, where a
    worker with those settings routes them), announced by the test announcer for an hour."""
    return await announce(settings, builtin_tasks(settings.task_queue))
