"""Dramatiq's queues, declared exactly as ``dramatiq.brokers.rabbitmq.RabbitmqBroker`` does.

RabbitMQ refuses a redeclaration with different arguments, so a Dramatiq
producer (which declares ``<queue>``, ``<queue>.DQ`` and ``<queue>.XQ`` before
its first send) and the bridge must agree to the byte, whichever starts first
(``RabbitmqBroker._build_queue_arguments`` and ``_declare_xq_queue``)::

    <queue>, <queue>.DQ   classic, durable, x-dead-letter-exchange "",
                          x-dead-letter-routing-key <queue>.XQ[, x-max-priority]
    <queue>.XQ            classic, durable, x-message-ttl (7 days)

Beside them the bridge adds bindings (bindings never conflict with Dramatiq's
declarations) so that Cargo's side treats each bridged queue by its own name:

- ``cargo.tasks --<queue>--> <task queue>`` and ``--#.<queue>-->`` (with
  ``celery_delayed_delivery --#.<queue>--> cargo.tasks``): translated tasks are
  published with the Dramatiq queue's name as routing key, land in Cargo's
  quorum task queue, and a worker sees the Dramatiq queue as the task's queue;
- ``cargo.dlx --<queue>.XQ--> <queue>.XQ``: so when a worker dead-letters a
  bridged task (``failed``, ``time_limit``, ``poison``…) it lands in Dramatiq's
  dead-letter queue, where ``get_queue_message_counts`` counts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.settings import BridgeSettings
from broker.topology import (
    CELERY_DELAYED_DELIVERY_EXCHANGE,
    DEAD_LETTER_EXCHANGE,
    TASKS_EXCHANGE,
    BindingSpec,
    QueueSpec,
    dead_letter_queue_name,
    delayed_delivery_binding_key,
    dramatiq_delay_queue_name,
)


def dramatiq_queue_arguments(queue: str, max_priority: int | None) -> dict[str, Any]:
    """Arguments of ``<queue>`` and ``<queue>.DQ`` (``_build_queue_arguments``)."""
    arguments: dict[str, Any] = {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead_letter_queue_name(queue),
    }
    if max_priority:
        arguments["x-max-priority"] = max_priority
    return arguments


@dataclass(frozen=True)
class ExchangeBinding:
    """An exchange-to-exchange binding: ``source --routing_key--> destination``."""

    source: str
    destination: str
    routing_key: str


@dataclass(frozen=True)
class BridgedQueue:
    """One Dramatiq queue the bridge serves, with everything declared for it."""

    name: str
    queue: QueueSpec
    delay_queue: QueueSpec
    dead_letter_queue: QueueSpec
    # Bindings of Cargo's task queue and exchanges, so translated tasks route.
    task_queue_bindings: tuple[BindingSpec, ...]
    exchange_bindings: tuple[ExchangeBinding, ...]

    @property
    def consumed(self) -> tuple[QueueSpec, ...]:
        """The queues the bridge consumes: the queue and its delay queue."""
        return (self.queue, self.delay_queue)

    @property
    def dramatiq_queues(self) -> tuple[QueueSpec, ...]:
        """Declared in Dramatiq's own order (``_ensure_queue``)."""
        return (self.queue, self.delay_queue, self.dead_letter_queue)


def bridged_queue(name: str, settings: BridgeSettings) -> BridgedQueue:
    arguments = dramatiq_queue_arguments(name, settings.bridge_max_priority)
    xq = dead_letter_queue_name(name)
    return BridgedQueue(
        name=name,
        queue=QueueSpec(name=name, arguments=dict(arguments), bindings=()),
        delay_queue=QueueSpec(name=dramatiq_delay_queue_name(name), arguments=dict(arguments),
                              bindings=()),
        dead_letter_queue=QueueSpec(name=xq,
                                    arguments={"x-message-ttl": settings.bridge_dead_message_ttl},
                                    bindings=(BindingSpec(DEAD_LETTER_EXCHANGE, xq),)),
        task_queue_bindings=(BindingSpec(TASKS_EXCHANGE, name),
                             BindingSpec(TASKS_EXCHANGE, delayed_delivery_binding_key(name))),
        exchange_bindings=(ExchangeBinding(CELERY_DELAYED_DELIVERY_EXCHANGE, TASKS_EXCHANGE,
                                           delayed_delivery_binding_key(name)),),
    )


def bridged_queues(settings: BridgeSettings) -> tuple[BridgedQueue, ...]:
    """Every queue ``CARGO_BRIDGE_QUEUES`` names; refuses one that is Cargo's own."""
    own = {settings.task_queue, dead_letter_queue_name(settings.task_queue)}
    clash = [name for name in settings.bridge_queue_names if name in own]
    if clash:
        raise ValueError(f"CARGO_BRIDGE_QUEUES names Cargo's own queue {clash[0]!r}; "
                         "a bridged queue is a Dramatiq queue, apart from CARGO_TASK_QUEUE")
    return tuple(bridged_queue(name, settings) for name in settings.bridge_queue_names)
