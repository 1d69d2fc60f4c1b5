"""Poison messages: dead-lettered with reason ``poison``, never acked away, never looping.

Celery acknowledges a message it cannot decode (the message is lost) and
rejects one naming an unknown task (RabbitMQ then dead-letters it as
``rejected``, or a requeue loops it). Cargo's consumer instead checks every
message on a task queue before Celery's strategy sees it: a message that is
not a valid Celery protocol v2 JSON message with a known task name — garbage,
the wrong shape, a header, property or body part of the wrong type
(``broker.celery_validation``), another framework's message — is published
unchanged to ``<queue>.XQ`` with reason ``poison`` and only then acknowledged
(``workers.request``). Some of these used to raise inside Celery's consumer,
which stops the whole worker ("Unrecoverable error"). Celery's own handlers for
such messages, and any exception Celery still raises taking a message, do the
same, as a backstop.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Any

import kombu
import structlog
from celery.worker.consumer import Consumer
from kombu.utils import json as kombu_json
from vine import promise

from broker.deadletter import Reason, poison_problem
from workers.deadletterer import body_of
from workers.runtime import runtime_of

log = structlog.get_logger(__name__)


def task_message_problem(message: kombu.Message, known_tasks: Container[str]) -> str | None:
    """Why Celery could never run this message (None when it can); never raises.

    The whole message is checked as Celery will read it: kombu has already
    undone a ``compression`` header (and noted a failure in ``errors``), and the
    body is decoded with kombu's own JSON decoder.
    """
    try:
        if message.errors:
            return "undecodable task message: the body does not decompress as its " \
                   f"'compression' header says ({message.headers.get('compression')!r})"
        properties = {**(message.properties or {}), "content_type": message.content_type,
                      "content_encoding": message.content_encoding}
        return poison_problem(message.headers, body_of(message), properties, known_tasks,
                              loads=kombu_json.loads, decompress=False)
    except Exception as exc:  # the check itself must never stop the worker
        return f"could not check the message: {type(exc).__name__}"


class CargoConsumer(Consumer):
    def create_task_handler(self, promise: Any = promise) -> Callable[[kombu.Message], Any]:
        handler: Callable[[kombu.Message], Any] = super().create_task_handler(promise)
        tasks = self.app.tasks
        # Connection and channel errors must reach Celery's consumer, which
        # reconnects; they say nothing about the message.
        passthrough = (*getattr(self, "connection_errors", ()),
                       *getattr(self, "channel_errors", ()))

        def on_task_received(message: kombu.Message) -> Any:
            problem = task_message_problem(message, tasks)
            if problem is not None:
                return self._cargo_poison(message, problem)
            try:
                return handler(message)
            except passthrough:
                raise
            except Exception as exc:
                # A backstop: whatever the check above missed must not stop the
                # worker ("Unrecoverable error") and then the next one.
                if message.acknowledged:
                    raise
                log.exception("consumer.message_refused_by_celery",
                              action="dead-lettered as poison")
                return self._cargo_poison(
                    message, f"Celery could not take the message: {type(exc).__name__}")

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
