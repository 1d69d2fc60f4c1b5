"""Declaring the topology, from asyncio (aio-pika) and from Celery's side (kombu).

Both functions walk the same :class:`~broker.topology.Topology`, so the two
sides always send RabbitMQ identical declarations; declaring twice, or from
either side first, is a no-op.

One exception is tolerated: a ``<queue>.XQ.watch`` queue declared by an older
Cargo, without ``x-delivery-limit``. RabbitMQ refuses to redeclare it
(PRECONDITION_FAILED), and refusing to start over a queue that only holds
notices would turn an upgrade into an outage. It is declared on a channel of
its own, so the refusal closes only that one; the queue is then used as it is
and a warning says how to upgrade it (``cargoctl topology declare
--replace-outdated-watch-queues``, README "Topology").
"""

from __future__ import annotations

from typing import Any

import aiormq
import amqp.exceptions
import kombu
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, ExchangeType

from broker.topology import CELERY_DELAYED_QUEUE_TYPE, QueueSpec, Topology

log = structlog.get_logger(__name__)

# What the operator reads with the ``topology.watch_queue_outdated`` warning.
OUTDATED_WATCH_QUEUE_HINT = (
    "declared by an older Cargo with other arguments (no x-delivery-limit); it is "
    "used as it is. Run `cargoctl topology declare --replace-outdated-watch-queues` "
    "to recreate it (it holds only notices; the dead letters stay in their .XQ queue)")


async def declare_topology(channel: AbstractChannel, topology: Topology) -> list[str]:
    """Declare every exchange, queue and binding on an aio-pika channel.

    Returns the watch queues an older Cargo declared with other arguments (kept as they are).
    """
    outdated: list[str] = []
    exchanges: dict[str, AbstractExchange] = {}
    for ex in topology.exchanges:
        exchanges[ex.name] = await channel.declare_exchange(
            ex.name, ExchangeType(ex.type), durable=ex.durable, arguments=ex.arguments or None)
    watch = {spec.name for spec in topology.dead_letter_watch_queues}
    for spec in topology.queues:
        if spec.name in watch:
            if not await declare_watch_queue(channel, spec):
                outdated.append(spec.name)
            continue
        queue = await channel.declare_queue(spec.name, durable=spec.durable,
                                            arguments=spec.arguments)
        for binding in spec.bindings:
            await queue.bind(binding.exchange, binding.routing_key)
    for eb in topology.exchange_bindings:
        await exchanges[eb.destination].bind(eb.source, eb.routing_key)
    return outdated


async def declare_watch_queue(channel: AbstractChannel, spec: QueueSpec) -> bool:
    """Declare a watch queue on channels of its own; False when an older one was kept."""
    connection = (await channel.get_underlay_channel()).connection
    current = True
    own = await connection.channel()
    try:
        try:
            await own.queue_declare(spec.name, durable=spec.durable,
                                    arguments=dict(spec.arguments))
        except aiormq.exceptions.ChannelPreconditionFailed:
            current = False
            log.warning("topology.watch_queue_outdated", queue=spec.name,
                        hint=OUTDATED_WATCH_QUEUE_HINT)
            own = await connection.channel()
            await own.queue_declare(spec.name, passive=True)
        for binding in spec.bindings:
            await own.queue_bind(spec.name, binding.exchange, binding.routing_key)
    finally:
        if not own.is_closed:
            await own.close()
    return current


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
    watch = {spec.name for spec in topology.dead_letter_watch_queues}
    for spec in topology.queues:
        if spec.name in watch:
            declare_watch_queue_with_kombu(connection, spec, topology)
        else:
            kombu_queue(spec, topology)(channel).declare()
            # A kombu Queue carries one binding (Celery routes by it); bind the others.
            for binding in spec.bindings[1:]:
                kombu.Queue(spec.name)(channel).bind_to(binding.exchange, binding.routing_key)
    for eb in topology.exchange_bindings:
        kombu.Exchange(eb.destination)(channel).bind_to(eb.source, eb.routing_key)


def declare_watch_queue_with_kombu(connection: kombu.Connection, spec: QueueSpec,
                                   topology: Topology) -> bool:
    """:func:`declare_watch_queue` through kombu; False when an older one was kept."""
    queue = kombu_queue(spec, topology)
    try:
        with connection.channel() as own:
            queue(own).declare()
        return True
    except amqp.exceptions.PreconditionFailed:
        log.warning("topology.watch_queue_outdated", queue=spec.name,
                    hint=OUTDATED_WATCH_QUEUE_HINT)
    with connection.channel() as own:
        bound = queue(own)
        bound.queue_declare(passive=True)
        bound.queue_bind()
    return False




