"""RabbitMQ topology: the one place that names exchanges, queues and their arguments.

Everything else (the gateway's publisher, Celery's ``task_queues``, the events
reader, the definitions export, the chart's KEDA trigger, the tests) takes names
and arguments from here. RabbitMQ refuses to redeclare a queue with different
arguments, so a second copy of any of this would break the first deploy that
changed it.

Shape::

    cargo.tasks (topic) --<queue>--> <queue> (quorum) --dead letter--> cargo.dlx (direct)
                                                                          --<queue>.XQ--> <queue>.XQ
    cargo.events (topic) --#--> cargo.events.stream (stream, retention by age and size)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker.settings import Settings

TASKS_EXCHANGE = "cargo.tasks"
DEAD_LETTER_EXCHANGE = "cargo.dlx"
EVENTS_EXCHANGE = "cargo.events"
EVENTS_STREAM = "cargo.events.stream"
# Celery's native delayed delivery (quorum queues cannot hold ETA tasks in the
# worker): a countdown is published to this exchange, never to the task queue.
CELERY_DELAYED_EXCHANGE = "celery_delayed_27"
DEAD_LETTER_SUFFIX = ".XQ"

# Header Cargo sets on a dead-lettered message, next to RabbitMQ's own x-death.
REASON_HEADER = "x-cargo-reason"


def dead_letter_queue_name(queue: str) -> str:
    """Where a queue's dead letters go: Dramatiq's ``<queue>.XQ`` convention."""
    return f"{queue}{DEAD_LETTER_SUFFIX}"


def event_routing_key(state: str, task_name: str) -> str:
    """Routing key of a lifecycle event, so consumers can bind by state or task."""
    return f"task.{state}.{task_name}"


@dataclass(frozen=True)
class ExchangeSpec:
    name: str
    type: str
    durable: bool = True
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BindingSpec:
    exchange: str
    routing_key: str


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: dict[str, Any]
    bindings: tuple[BindingSpec, ...]
    durable: bool = True

    @property
    def queue_type(self) -> str:
        return str(self.arguments.get("x-queue-type", "classic"))


@dataclass(frozen=True)
class Topology:
    tasks_exchange: ExchangeSpec
    dead_letter_exchange: ExchangeSpec
    events_exchange: ExchangeSpec
    task_queues: tuple[QueueSpec, ...]
    dead_letter_queues: tuple[QueueSpec, ...]
    events_stream: QueueSpec

    @property
    def exchanges(self) -> tuple[ExchangeSpec, ...]:
        return (self.tasks_exchange, self.dead_letter_exchange, self.events_exchange)

    @property
    def queues(self) -> tuple[QueueSpec, ...]:
        # Dead-letter queues first: a task queue's dead letters must have somewhere
        # to go from the moment the task queue exists.
        return (*self.dead_letter_queues, *self.task_queues, self.events_stream)

    @property
    def default_queue(self) -> QueueSpec:
        return self.task_queues[0]

    def queue(self, name: str) -> QueueSpec:
        for spec in self.queues:
            if spec.name == name:
                return spec
        raise KeyError(name)


def task_queue_arguments(queue: str, settings: Settings) -> dict[str, Any]:
    """Arguments of a task queue, exactly as both the gateway and Celery declare them."""
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": dead_letter_queue_name(queue),
        # at-least-once dead-lettering keeps a dead letter until the DLQ confirmed
        # it; RabbitMQ only allows it together with reject-publish overflow.
        "x-dead-letter-strategy": "at-least-once",
        "x-delivery-limit": settings.delivery_limit,
        "x-max-length": settings.queue_max_length,
        "x-overflow": "reject-publish",
    }


def task_queue(queue: str, settings: Settings) -> QueueSpec:
    return QueueSpec(
        name=queue,
        arguments=task_queue_arguments(queue, settings),
        bindings=(BindingSpec(TASKS_EXCHANGE, queue),),
    )


def dead_letter_queue(queue: str) -> QueueSpec:
    name = dead_letter_queue_name(queue)
    return QueueSpec(
        name=name,
        arguments={"x-queue-type": "quorum"},
        bindings=(BindingSpec(DEAD_LETTER_EXCHANGE, name),),
    )


def events_stream(settings: Settings) -> QueueSpec:
    return QueueSpec(
        name=EVENTS_STREAM,
        arguments={
            "x-queue-type": "stream",
            "x-max-age": settings.events_max_age,
            "x-max-length-bytes": settings.events_max_bytes,
            "x-stream-max-segment-size-bytes": settings.events_segment_bytes,
        },
        bindings=(BindingSpec(EVENTS_EXCHANGE, "#"),),
    )


def build_topology(settings: Settings) -> Topology:
    queues = (settings.task_queue,)
    return Topology(
        tasks_exchange=ExchangeSpec(TASKS_EXCHANGE, "topic"),
        dead_letter_exchange=ExchangeSpec(DEAD_LETTER_EXCHANGE, "direct"),
        events_exchange=ExchangeSpec(EVENTS_EXCHANGE, "topic"),
        task_queues=tuple(task_queue(q, settings) for q in queues),
        dead_letter_queues=tuple(dead_letter_queue(q) for q in queues),
        events_stream=events_stream(settings),
    )
