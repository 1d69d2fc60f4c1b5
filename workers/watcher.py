"""The dead-letter watcher: ``dead_lettered`` events for what RabbitMQ dead-lettered.

RabbitMQ itself dead-letters a message that went past the quorum queue's
delivery limit (workers kept dying on it) or that a task rejected; nobody in
Cargo sees that happen. Every dead letter is therefore also routed to
``<queue>.XQ.watch`` (bounded), which this consumer step reads in each
worker's main process: for a message RabbitMQ dead-lettered (``x-death``, no
``x-cargo-reason``) it emits the ``dead_lettered`` event with the mapped reason
(``delivery_limit``, ``rejected``) and counts it; a message Cargo dead-lettered
itself already had its event and is only acknowledged. The notices are shared
among workers (competing consumers), so each dead-lettering is announced once
(at least once, if a worker dies between the event and the ack).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kombu
import structlog
from celery import bootsteps

from broker.deadletter import dead_lettered_by_cargo, identify, parse_dead_letter
from broker.declare import declare_watch_queue_with_kombu, kombu_queue
from broker.events import TaskState
from broker.topology import QueueSpec, dead_letter_watch_queue_name
from workers.announce import consumed_queues
from workers.deadletterer import body_of
from workers.runtime import CargoRuntime, runtime_of

log = structlog.get_logger(__name__)

PREFETCH = 50


class DeadLetterWatcher(bootsteps.ConsumerStep):
    requires = ("celery.worker.consumer.connection:Connection",)

    _runtime: CargoRuntime | None = None
    _hostname: str | None = None
    _watched: tuple[QueueSpec, ...] = ()

    def get_consumers(self, channel: Any) -> list[kombu.Consumer]:
        runtime, hostname = self._runtime, self._hostname
        if runtime is None or not self._watched:
            return []
        queues = [kombu_queue(spec, runtime.topology) for spec in self._watched]

        def on_message(message: kombu.Message) -> None:
            self.on_message(runtime, message, hostname)

        def on_decode_error(message: kombu.Message, exc: BaseException) -> None:
            # kombu fails some messages before on_message (a 'compression'
            # header over junk); without this it raises into the worker's loop.
            self.drop(runtime, message, exc)

        # Declared in start(), tolerating an older Cargo's watch queue: the
        # consumer must not redeclare it with other arguments.
        return [kombu.Consumer(channel, queues=queues, on_message=on_message,
                               prefetch_count=PREFETCH, no_ack=False, auto_declare=False,
                               on_decode_error=on_decode_error)]

    def start(self, parent: Any) -> None:
        self._runtime = runtime_of(parent.app)
        self._hostname = parent.hostname
        if self._runtime is not None:
            topology = self._runtime.topology
            # The watch queues of the queues this worker consumes: a pool of
            # workers announces the dead letters of its own queues.
            consumed = {dead_letter_watch_queue_name(q) for q in consumed_queues(parent.app)}
            self._watched = tuple(spec for spec in topology.dead_letter_watch_queues
                                  if spec.name in consumed)
            for spec in self._watched:
                declare_watch_queue_with_kombu(parent.connection, spec, topology)
        super().start(parent)

    @staticmethod
    def on_message(runtime: CargoRuntime, message: kombu.Message, hostname: str | None) -> None:
        try:
            DeadLetterWatcher.announce(runtime, message, hostname)
        except Exception as exc:
            DeadLetterWatcher.drop(runtime, message, exc)
            return
        message.ack()

    @staticmethod
    def drop(runtime: CargoRuntime, message: kombu.Message, exc: BaseException) -> None:
        """Acknowledge a notice that cannot be read, with a log line and a metric.

        A notice is only a copy (the dead letter itself stays in <queue>.XQ):
        one that cannot be read is dropped, never allowed to stop the worker and
        then the next one that receives it.
        """
        runtime.metrics.watch_dropped(type(exc).__name__)
        log.error("watcher.notice_dropped", error=f"{type(exc).__name__}: {str(exc)[:200]}")
        message.ack()

    @staticmethod
    def announce(runtime: CargoRuntime, message: kombu.Message, hostname: str | None) -> None:
        """The ``dead_lettered`` event of a message RabbitMQ dead-lettered itself."""
        headers = message.headers if isinstance(message.headers, Mapping) else {}
        if dead_lettered_by_cargo(headers):
            return
        queue = runtime.settings.task_queue
        body = body_of(message)
        letter = parse_dead_letter(body, headers, message.properties, queue)
        reason = letter.reason or "unknown"
        task_id, name = identify(headers, body, message.properties)
        runtime.metrics.dead_lettered(letter.queue, reason)
        log.warning("watcher.dead_lettered_by_rabbitmq", task_name=name, task_id=task_id,
                    queue=letter.queue, reason=reason)
        runtime.emit(task_id, name, TaskState.DEAD_LETTERED, queue=letter.queue,
                     reason=reason, hostname=hostname)
