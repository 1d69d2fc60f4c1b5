"""Poison messages: dead-lettered with reason ``poison``, never acked away, never looping.

Celery acknowledges a message it cannot decode (the message is lost) and
rejects one naming an unknown task (RabbitMQ then dead-letters it as
``rejected``, or a requeue loops it). Cargo's consumer instead checks every
message on a task queue before Celery's strategy sees it: a message that is
not Celery protocol v2 JSON with a known task name — garbage, the wrong shape,
another framework's message — is published unchanged to ``<queue>.XQ`` with
reason ``poison`` and only then acknowledged (``workers.deadletter``). Celery's
own handlers for such messages do the same, as a backstop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kombu
from celery.worker.consumer import Consumer
from vine import promise

from broker.deadletter import Reason, poison_problem
from workers.deadletter import body_of, runtime_of


class CargoConsumer(Consumer):
    def create_task_handler(self, promise: Any = promise) -> Callable[[kombu.Message], Any]:
        handler: Callable[[kombu.Message], Any] = super().create_task_handler(promise)
        tasks = self.app.tasks

        def on_task_received(message: kombu.Message) -> Any:
            problem = poison_problem(message.headers, body_of(message), message.content_type,
                                     tasks)
            if problem is not None:
                return self._cargo_poison(message, problem)
            return handler(message)

        return on_task_received

    def _cargo_poison(self, message: kombu.Message, problem: str) -> None:
        runtime = runtime_of(self.app)
        if runtime is None:  # not Cargo's app: Celery's behaviour
            message.reject_log_error(None, getattr(self, "connection_errors", ()))
            return
        runtime.dead_letter_message(message, Reason.POISON, problem, self.hostname)

    def on_unknown_message(self, body: Any, message: kombu.Message) -> None:
        self._cargo_poison(message, "not a Celery task message")

    def on_unknown_task(self, body: Any, message: kombu.Message, exc: BaseException) -> None:
        self._cargo_poison(message, f"unknown task: {exc}")

    def on_invalid_task(self, body: Any, message: kombu.Message, exc: BaseException) -> None:
        self._cargo_poison(message, f"invalid task message: {exc}")

    def on_decode_error(self, message: kombu.Message, exc: BaseException) -> None:
        self._cargo_poison(message, f"undecodable message: {exc}")
