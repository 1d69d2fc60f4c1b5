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

import logging
from typing import Any

import kombu
from celery import bootsteps

from broker.deadletter import dead_lettered_by_cargo, identify, parse_dead_letter
from broker.declare import kombu_queue
from broker.events import TaskState
from workers.deadletter import CargoRuntime, body_of, runtime_of

log = logging.getLogger(__name__)

PREFETCH = 50


class DeadLetterWatcher(bootsteps.ConsumerStep):
    requires = ("celery.worker.consumer.connection:Connection",)

    _runtime: CargoRuntime | None = None
    _hostname: str | None = None

    def get_consumers(self, channel: Any) -> list[kombu.Consumer]:
        runtime, hostname = self._runtime, self._hostname
        if runtime is None:
            return []
        queues = [kombu_queue(spec, runtime.topology)
                  for spec in runtime.topology.dead_letter_watch_queues]

        def on_message(message: kombu.Message) -> None:
            self.on_message(runtime, message, hostname)

        return [kombu.Consumer(channel, queues=queues, on_message=on_message,
                               prefetch_count=PREFETCH, no_ack=False)]

    def start(self, parent: Any) -> None:
        self._runtime = runtime_of(parent.app)
        self._hostname = parent.hostname
        super().start(parent)

    @staticmethod
    def on_message(runtime: CargoRuntime, message: kombu.Message, hostname: str | None) -> None:
        headers = message.headers or {}
        if not dead_lettered_by_cargo(headers):
            queue = runtime.settings.task_queue
            body = body_of(message)
            letter = parse_dead_letter(body, headers, message.properties, queue)
            reason = letter.reason or "unknown"
            task_id, name = identify(headers, body, message.properties)
            runtime.metrics.dead_lettered(letter.queue, reason)
            log.warning("RabbitMQ dead-lettered %s[%s] from %s: %s", name, task_id,
                        letter.queue, reason)
            runtime.emit(task_id, name, TaskState.DEAD_LETTERED, queue=letter.queue,
                         reason=reason, hostname=hostname)
        message.ack()
