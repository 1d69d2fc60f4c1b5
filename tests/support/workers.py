"""Helpers for worker tests: the plain Celery CLI, the gateway's publisher, broker state."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from broker.celery_protocol import encode_task
from broker.connection import BrokerConnection
from broker.management import ManagementClient
from broker.publisher import Publisher
from broker.settings import Settings
from broker.topology import Topology, build_topology
from tests.support.eventually import eventually
from tests.support.processes import BIN, Proc, start_consumer


def start_celery_cli_worker(settings: Settings, nodename: str) -> Proc:
    """``celery -A workers.app worker``: the unmodified Celery CLI, no cargoctl."""
    return start_consumer(settings, nodename.split("@")[0], [
        str(BIN / "celery"), "-A", "workers.app", "worker",
        "--loglevel=INFO", "--concurrency=1", f"--hostname={nodename}",
    ])


@asynccontextmanager
async def gateway_publisher(settings: Settings) -> AsyncIterator[Publisher]:
    """The gateway's own publishing path: a BrokerConnection (which declares the
    topology with aio-pika on connect) and a confirm Publisher over it."""
    async with BrokerConnection(settings, build_topology(settings),
                                name="test-publisher") as connection:
        if not await connection.wait_ready(30):
            raise TimeoutError(f"publisher not connected: {connection.last_error}")
        yield Publisher(connection, timeout=10)


async def submit(publisher: Publisher, settings: Settings, name: str, args: list[Any],
                 kwargs: dict[str, Any] | None = None) -> str:
    """Publish a Celery protocol message exactly as the gateway does; return its task id."""
    task_id = str(uuid.uuid4())
    await publisher.publish_task(encode_task(task_id, name, args, kwargs), settings.task_queue)
    return task_id


async def declared_differences(settings: Settings, topology: Topology) -> list[str]:
    """What on the broker differs from the topology (empty when everything matches)."""
    problems: list[str] = []
    async with ManagementClient(settings.management_api) as api:
        exchanges = {e["name"]: e for e in await api.list_exchanges(settings.vhost)}
        queues = {q["name"]: q for q in await api.list_queues(settings.vhost)}
        bindings = {(b["source"], b["destination"], b["routing_key"])
                    for b in await api.list_bindings(settings.vhost)}
    for ex in topology.exchanges:
        found = exchanges.get(ex.name)
        if found is None or found["type"] != ex.type or found["durable"] != ex.durable:
            problems.append(f"exchange {ex.name}: {found}")
    for spec in topology.queues:
        queue = queues.get(spec.name)
        if queue is None or queue["arguments"] != spec.arguments:
            problems.append(f"queue {spec.name}: {queue and queue['arguments']}")
        for b in spec.bindings:
            if (b.exchange, spec.name, b.routing_key) not in bindings:
                problems.append(f"binding {b.exchange} -> {spec.name} ({b.routing_key})")
    return problems


async def wait_queue_empty(settings: Settings, queue: str, timeout: float = 60) -> dict[str, Any]:
    """Wait (bounded) until the queue holds no ready and no unacked message.

    The management API's counters lag by its statistics interval, so poll.
    """
    async with ManagementClient(settings.management_api) as api:
        async def counters() -> dict[str, Any]:
            info = await api.get_queue(settings.vhost, queue)
            return {key: info.get(key) for key in ("messages_ready", "messages_unacknowledged")}

        return await eventually(counters, timeout, f"{queue!r} empty",
                                until=lambda seen: set(seen.values()) == {0})
