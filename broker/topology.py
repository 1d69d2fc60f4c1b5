"""RabbitMQ topology: the one place that names exchanges, queues and their arguments.

Everything else (the gateway's publisher, Celery's ``task_queues``, the events
reader, the definitions export, the chart's KEDA trigger, the tests) takes names
and arguments from here. RabbitMQ refuses to redeclare a queue with different
arguments, so a second copy of any of this would break the first deploy that
changed it.

Shape::

    cargo.tasks (topic) --<queue>--> <queue> (quorum) --dead letter--> cargo.dlx (direct)
                                                        --<queue>.XQ--> <queue>.XQ, <queue>.XQ.watch
    cargo.events (topic) --#--> cargo.events.stream (stream, retention by age and size)
    cargo.catalog (fanout) --> cargo.catalog.stream (stream): the workers' task catalogs
    celery_delayed_27 .. celery_delayed_0 --> celery_delayed_delivery --#.<queue>--> cargo.tasks
        (Celery's native delayed delivery, declared exactly as kombu declares it)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kombu.transport import native_delayed_delivery as kombu_delayed

from broker.settings import BrokerSettings

TASKS_EXCHANGE = "cargo.tasks"
DEAD_LETTER_EXCHANGE = "cargo.dlx"
# AMQP delivery mode of every message Cargo publishes: written to disk by durable queues.
PERSISTENT = 2
EVENTS_EXCHANGE = "cargo.events"
EVENTS_STREAM = "cargo.events.stream"
# Workers announce their task catalog here (broker.catalog); gateways and the
# bridge read it from a little before they start. Small and short-lived: an
# announcement is a few KiB and matters for minutes, so segments are small
# (retention drops whole segments) and an hour is kept.
CATALOG_EXCHANGE = "cargo.catalog"
CATALOG_STREAM = "cargo.catalog.stream"
CATALOG_MAX_AGE = "1h"
CATALOG_MAX_BYTES = 100_000_000
CATALOG_SEGMENT_BYTES = 1_000_000
# How far back a reader starts: the longest an announcement may hold (its ttl).
CATALOG_REPLAY_SECONDS = 900
# Celery's native delayed delivery (quorum queues cannot hold ETA tasks in the
# worker): a countdown is published to this exchange, never to the task queue.
CELERY_DELAYED_EXCHANGE = kombu_delayed.level_name(kombu_delayed.MAX_LEVEL)  # celery_delayed_27
# The type of the delay-level queues; Celery's ``broker_native_delayed_delivery_queue_type``
# is set from it, so the worker redeclares them with identical arguments.
CELERY_DELAYED_QUEUE_TYPE = "quorum"
DEAD_LETTER_SUFFIX = ".XQ"

# Where Celery's delayed-delivery levels end (kombu.transport.native_delayed_delivery):
# a topic exchange that forwards each message by the queue name at the end of its
# routing key, so every queue a delayed task can reach is bound with ``#.<queue>``.
CELERY_DELAYED_DELIVERY_EXCHANGE = kombu_delayed.CELERY_DELAYED_DELIVERY_EXCHANGE
# Dramatiq's RabbitmqBroker names (dramatiq.common): ``<queue>.DQ`` holds delayed
# messages, ``<queue>.XQ`` (DEAD_LETTER_SUFFIX) dead letters.
DRAMATIQ_DELAY_SUFFIX = ".DQ"

# Headers Cargo sets on a message it dead-letters itself, next to RabbitMQ's own
# x-death (which RabbitMQ adds when *it* dead-letters: delivery limit, reject).
REASON_HEADER = "x-cargo-reason"
ERROR_TYPE_HEADER = "x-cargo-error-type"
ERROR_MESSAGE_HEADER = "x-cargo-error-message"
DEAD_LETTERED_AT_HEADER = "x-cargo-dead-lettered-at"
QUEUE_HEADER = "x-cargo-queue"
# A message's own retry budget (a bridged Dramatiq message's ``max_retries``): the
# worker uses it instead of the task's when present.
MAX_RETRIES_HEADER = "x-cargo-max-retries"
# The largest retry budget a message (that header) or CARGO_TASK_LIMITS may ask for.
MAX_RETRY_BUDGET = 100
# RabbitMQ's own dead-lettering headers (read, and stripped on replay).
DEATH_HEADER = "x-death"
FIRST_DEATH_REASON_HEADER = "x-first-death-reason"
FIRST_DEATH_QUEUE_HEADER = "x-first-death-queue"
RABBITMQ_DEATH_HEADERS = ("x-death", "x-first-death-reason", "x-first-death-queue",
                          "x-first-death-exchange", "x-last-death-reason",
                          "x-last-death-queue", "x-last-death-exchange", "x-delivery-count")
CARGO_DEATH_HEADERS = (REASON_HEADER, ERROR_TYPE_HEADER, ERROR_MESSAGE_HEADER,
                       DEAD_LETTERED_AT_HEADER, QUEUE_HEADER)

# Every dead letter is also routed to a small companion queue that the workers
# consume, so dead-lettering done by RabbitMQ itself (delivery limit, a task
# rejecting its message) still becomes a ``dead_lettered`` event. Bounded: if
# no worker reads it for long, the oldest notices go (the dead letters stay).
WATCH_SUFFIX = ".watch"
WATCH_MAX_LENGTH = 10_000
# A notice that keeps killing the worker reading it is dropped after this many
# deliveries (no dead-lettering of its own: the dead letter itself is in
# <queue>.XQ). Queues declared by an older Cargo lack it; see broker/declare.py.
WATCH_DELIVERY_LIMIT = 5


# A task queue named in an announcement or a setting: a plain AMQP name that is
# not RabbitMQ's, not one of Cargo's own, and not a dead-letter or delay queue.
QUEUE_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,199}$"


def check_queue_name(name: str) -> None:
    """Raise ValueError unless ``name`` may be a task queue."""
    if not re.fullmatch(QUEUE_NAME_PATTERN, name):
        raise ValueError(f"queue name {name!r} must be 1-200 of A-Z a-z 0-9 _ . : - "
                         "(not starting with . : -)")
    if name.startswith(("amq.", "cargo.")) or name.startswith("celery_delayed"):
        raise ValueError(f"queue name {name!r} is reserved (amq., cargo., celery_delayed)")
    if name.endswith((DEAD_LETTER_SUFFIX, DRAMATIQ_DELAY_SUFFIX, WATCH_SUFFIX)):
        raise ValueError(f"queue name {name!r} ends like a dead-letter or delay queue")


def dead_letter_queue_name(queue: str) -> str:
    """Where a queue's dead letters go: Dramatiq's ``<queue>.XQ`` convention."""
    return f"{queue}{DEAD_LETTER_SUFFIX}"


def dead_letter_watch_queue_name(queue: str) -> str:
    """The companion of ``<queue>.XQ`` the workers' dead-letter watcher consumes."""
    return f"{dead_letter_queue_name(queue)}{WATCH_SUFFIX}"


def dramatiq_delay_queue_name(queue: str) -> str:
    """Dramatiq's delay queue of ``queue`` (``dq_name``)."""
    return f"{queue}{DRAMATIQ_DELAY_SUFFIX}"


def dramatiq_canonical_queue_name(name: str) -> str:
    """The queue a Dramatiq ``.DQ`` or ``.XQ`` name belongs to (``q_name``)."""
    if name.endswith((DRAMATIQ_DELAY_SUFFIX, DEAD_LETTER_SUFFIX)):
        return name[: -len(DRAMATIQ_DELAY_SUFFIX)]
    return name


def delayed_delivery_binding_key(queue: str) -> str:
    """The binding key that lets Celery's delayed delivery reach ``queue`` (``#.<queue>``)."""
    return f"#.{queue}"


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
class ExchangeBindingSpec:
    """An exchange-to-exchange binding: ``source --routing_key--> destination``."""

    source: str
    destination: str
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
    dead_letter_watch_queues: tuple[QueueSpec, ...] = ()
    # Celery's native delayed delivery: a countdown is published to its top level,
    # so it must exist before any worker ran, or RabbitMQ closes the publishing
    # channel (404) under every other in-flight submission.
    delayed_exchanges: tuple[ExchangeSpec, ...] = ()
    delayed_queues: tuple[QueueSpec, ...] = ()
    exchange_bindings: tuple[ExchangeBindingSpec, ...] = ()
    catalog_exchange: ExchangeSpec = field(
        default_factory=lambda: ExchangeSpec(CATALOG_EXCHANGE, "fanout"))
    catalog_stream: QueueSpec = field(default_factory=lambda: catalog_stream())

    @property
    def exchanges(self) -> tuple[ExchangeSpec, ...]:
        return (self.tasks_exchange, self.dead_letter_exchange, self.events_exchange,
                self.catalog_exchange, *self.delayed_exchanges)

    @property
    def queues(self) -> tuple[QueueSpec, ...]:
        # Dead-letter queues first: a task queue's dead letters must have somewhere
        # to go from the moment the task queue exists.
        return (*self.dead_letter_queues, *self.dead_letter_watch_queues, *self.delayed_queues,
                *self.task_queues, self.events_stream, self.catalog_stream)

    @property
    def default_queue(self) -> QueueSpec:
        return self.task_queues[0]

    def queue(self, name: str) -> QueueSpec:
        for spec in self.queues:
            if spec.name == name:
                return spec
        raise KeyError(name)


def task_queue_arguments(queue: str, settings: BrokerSettings) -> dict[str, Any]:
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


def task_queue(queue: str, settings: BrokerSettings) -> QueueSpec:
    return QueueSpec(
        name=queue,
        arguments=task_queue_arguments(queue, settings),
        # The second binding takes a delayed task back from celery_delayed_delivery
        # (kombu's bind_queue_to_native_delayed_delivery_exchange binds the same).
        bindings=(BindingSpec(TASKS_EXCHANGE, queue),
                  BindingSpec(TASKS_EXCHANGE, delayed_delivery_binding_key(queue))),
    )


def dead_letter_queue(queue: str) -> QueueSpec:
    name = dead_letter_queue_name(queue)
    return QueueSpec(
        name=name,
        arguments={"x-queue-type": "quorum"},
        bindings=(BindingSpec(DEAD_LETTER_EXCHANGE, name),),
    )


def dead_letter_watch_queue(queue: str) -> QueueSpec:
    return QueueSpec(
        name=dead_letter_watch_queue_name(queue),
        arguments={"x-queue-type": "quorum", "x-max-length": WATCH_MAX_LENGTH,
                   "x-overflow": "drop-head", "x-delivery-limit": WATCH_DELIVERY_LIMIT},
        bindings=(BindingSpec(DEAD_LETTER_EXCHANGE, dead_letter_queue_name(queue)),),
    )


def events_stream(settings: BrokerSettings) -> QueueSpec:
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


def catalog_stream() -> QueueSpec:
    return QueueSpec(
        name=CATALOG_STREAM,
        arguments={
            "x-queue-type": "stream",
            "x-max-age": CATALOG_MAX_AGE,
            "x-max-length-bytes": CATALOG_MAX_BYTES,
            "x-stream-max-segment-size-bytes": CATALOG_SEGMENT_BYTES,
        },
        bindings=(BindingSpec(CATALOG_EXCHANGE, ""),),
    )


def celery_delayed_queue(level: int) -> QueueSpec:
    """One delay level: holds a message 2**level seconds, then dead-letters it one level down.

    The arguments and binding are those of kombu's
    ``declare_native_delayed_delivery_exchanges_and_queues``; RabbitMQ refuses the
    worker's redeclaration if a single one differs.
    """
    name = kombu_delayed.level_name(level)
    below = kombu_delayed.level_name(level - 1) if level > 0 else CELERY_DELAYED_DELIVERY_EXCHANGE
    arguments: dict[str, Any] = {
        "x-queue-type": CELERY_DELAYED_QUEUE_TYPE,
        "x-overflow": "reject-publish",
        "x-message-ttl": 2 ** level * 1000,
        "x-dead-letter-exchange": below,
    }
    if CELERY_DELAYED_QUEUE_TYPE == "quorum":
        arguments["x-dead-letter-strategy"] = "at-least-once"
    # Bit ``level`` of the delay set: the routing key's (MAX_LEVEL - level)-th word is 1.
    key = "*." * (kombu_delayed.MAX_LEVEL - level) + "1.#"
    return QueueSpec(name=name, arguments=arguments, bindings=(BindingSpec(name, key),))


def celery_delayed_exchange_bindings(
        task_queues: tuple[str, ...]) -> tuple[ExchangeBindingSpec, ...]:
    """Bit ``level`` clear: skip that level's queue; the last level ends in the delivery
    exchange, which hands each task back to ``cargo.tasks`` by its queue's name."""
    levels = range(kombu_delayed.MAX_LEVEL, 0, -1)
    skips = tuple(
        ExchangeBindingSpec(kombu_delayed.level_name(level), kombu_delayed.level_name(level - 1),
                            "*." * (kombu_delayed.MAX_LEVEL - level) + "0.#")
        for level in levels)
    last = ExchangeBindingSpec(kombu_delayed.level_name(0), CELERY_DELAYED_DELIVERY_EXCHANGE,
                               "*." * kombu_delayed.MAX_LEVEL + "0.#")
    back = tuple(ExchangeBindingSpec(CELERY_DELAYED_DELIVERY_EXCHANGE, TASKS_EXCHANGE,
                                     delayed_delivery_binding_key(q)) for q in task_queues)
    return (*skips, last, *back)


def build_topology(settings: BrokerSettings, task_queues: Iterable[str] = ()) -> Topology:
    """Cargo's topology with the default task queue and ``task_queues`` (a worker's
    tasks' queues), each with its dead-letter, watch and delayed-delivery parts."""
    queues = tuple(dict.fromkeys((settings.task_queue, *task_queues)))
    return Topology(
        tasks_exchange=ExchangeSpec(TASKS_EXCHANGE, "topic"),
        dead_letter_exchange=ExchangeSpec(DEAD_LETTER_EXCHANGE, "direct"),
        events_exchange=ExchangeSpec(EVENTS_EXCHANGE, "topic"),
        task_queues=tuple(task_queue(q, settings) for q in queues),
        dead_letter_queues=tuple(dead_letter_queue(q) for q in queues),
        events_stream=events_stream(settings),
        dead_letter_watch_queues=tuple(dead_letter_watch_queue(q) for q in queues),
        delayed_exchanges=(
            *(ExchangeSpec(kombu_delayed.level_name(level), "topic")
              for level in range(kombu_delayed.MAX_LEVEL, -1, -1)),
            ExchangeSpec(CELERY_DELAYED_DELIVERY_EXCHANGE, "topic")),
        delayed_queues=tuple(celery_delayed_queue(level)
                             for level in range(kombu_delayed.MAX_LEVEL, -1, -1)),
        exchange_bindings=celery_delayed_exchange_bindings(queues),
    )
