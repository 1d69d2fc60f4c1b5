"""Declaring the topology, from asyncio (aio-pika) and from Celery's side (kombu).

Both functions walk the same :class:`~broker.topology.Topology`, so the two
sides always send RabbitMQ identical declarations; declaring twice, or from
either side first, is a no-op.
"""

from __future__ import annotations

from typing import Any

import kombu
from aio_pika.abc import AbstractChannel, AbstractExchange, ExchangeType

from broker.topology import CELERY_DELAYED_QUEUE_TYPE, QueueSpec, Topology


async def declare_topology(channel: AbstractChannel, topology: Topology) -> None:
    """Declare every exchange, queue and binding on an aio-pika channel."""
    exchanges: dict[str, AbstractExchange] = {}
    for ex in topology.exchanges:
        exchanges[ex.name] = await channel.declare_exchange(
            ex.name, ExchangeType(ex.type), durable=ex.durable, arguments=ex.arguments or None)
    for spec in topology.queues:
        queue = await channel.declare_queue(spec.name, durable=spec.durable,
                                            arguments=spec.arguments)
        for binding in spec.bindings:
            await queue.bind(binding.exchange, binding.routing_key)
    for eb in topology.exchange_bindings:
        await exchanges[eb.destination].bind(eb.source, eb.routing_key)


def kombu_queue(spec: QueueSpec, topology: Topology) -> kombu.Queue:
    """A kombu Queue that declares exactly what :func:`declare_topology` declares."""
    exchanges = {ex.name: ex for ex in topology.exchanges}
    bindings = [
        kombu.binding(
            kombu.Exchange(b.exchange, type=exchanges[b.exchange].type,
                           durable=exchanges[b.exchange].durable),
            routing_key=b.routing_key,
        )
        for b in spec.bindings
    ]
    first = bindings[0]
    return kombu.Queue(
        spec.name,
        exchange=first.exchange,
        routing_key=first.routing_key,
        durable=spec.durable,
        queue_arguments=dict(spec.arguments),
    )


def kombu_task_queues(topology: Topology) -> list[kombu.Queue]:
    """Celery's ``task_queues``: the task queues the workers consume."""
    return [kombu_queue(spec, topology) for spec in topology.task_queues]


def celery_routing(topology: Topology) -> dict[str, Any]:
    """Celery settings that route every task through Cargo's exchange and queues.

    A queue missing from ``task_queues`` would be auto-created without Cargo's
    arguments (no dead-lettering, no limits), so creating missing queues is off.
    The delay-level queues' type is Cargo's too: the gateway declares them first.
    """
    default = topology.default_queue
    return {
        "task_queues": kombu_task_queues(topology),
        "task_default_queue": default.name,
        "task_default_exchange": topology.tasks_exchange.name,
        "task_default_exchange_type": topology.tasks_exchange.type,
        "task_default_routing_key": default.bindings[0].routing_key,
        "task_create_missing_queues": False,
        "broker_native_delayed_delivery_queue_type": CELERY_DELAYED_QUEUE_TYPE,
    }


def declare_with_kombu(connection: kombu.Connection, topology: Topology) -> None:
    """Declare the whole topology through kombu (what a Celery worker does at start)."""
    channel = connection.default_channel
    for ex in topology.exchanges:
        kombu.Exchange(ex.name, type=ex.type, durable=ex.durable,
                       arguments=ex.arguments or None)(channel).declare()
    for spec in topology.queues:
        kombu_queue(spec, topology)(channel).declare()
        # A kombu Queue carries one binding (Celery routes by it); bind the others.
        for binding in spec.bindings[1:]:
            kombu.Queue(spec.name)(channel).bind_to(binding.exchange, binding.routing_key)
    for eb in topology.exchange_bindings:
        kombu.Exchange(eb.destination)(channel).bind_to(eb.source, eb.routing_key)




