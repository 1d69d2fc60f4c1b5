"""The worker's dead-letterer: publishes an original message to ``<queue>.XQ``, with confirms.

The worker's main process owns every message (late acks), so it is the one
that dead-letters: it publishes the ORIGINAL message (body and headers, so a
replay runs the same task id) to ``cargo.dlx`` with routing key
``<queue>.XQ`` and Cargo's reason/error/time headers, and waits for the
broker's confirm. Its callers acknowledge the original only then; if the
publish fails they requeue it instead, never acknowledge it: RabbitMQ delivers
it again and, past the queue's delivery limit, dead-letters it itself.

Its callers: :class:`workers.request.CargoRequest` (a task that failed for
good, ran past its hard time limit or could not be decoded in the pool), the
memory guard (``workers.guard``) and the poison check (``workers.consumer``,
through :meth:`workers.runtime.CargoRuntime.dead_letter_message`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import celery
import kombu
import structlog

from broker.deadletter import Reason, dead_letter_headers
from broker.topology import DEAD_LETTER_EXCHANGE, PERSISTENT, dead_letter_queue_name
from workers.metrics import WorkerMetrics

log = structlog.get_logger(__name__)

_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def body_of(message: kombu.Message) -> bytes:
    """The message body as bytes, whatever kombu made of it."""
    body: Any = message.body
    if isinstance(body, bytes):
        return body
    return str(body or "").encode()


class DeadLetterer:
    """Publishes original messages to the dead-letter exchange, with confirms."""

    def __init__(self, app: celery.Celery, metrics: WorkerMetrics, timeout: float) -> None:
        self._app = app
        self._metrics = metrics
        self._timeout = timeout

    def publish(self, message: kombu.Message, queue: str, reason: Reason,
                error: Mapping[str, str] | None) -> bool:
        """Publish ``message`` to ``<queue>.XQ``; True once the broker confirmed it."""
        properties: dict[str, Any] = dict(message.properties or {})
        extra = {k: properties[k] for k in ("correlation_id", "message_id", "reply_to",
                                            "priority", "timestamp", "type", "app_id")
                 if properties.get(k) is not None}
        headers = dead_letter_headers(message.headers, reason=reason, queue=queue, error=error)
        if headers.get("compression") and not message.errors:
            # kombu already decompressed the body we publish: the header no longer holds.
            del headers["compression"]
        try:
            with self._app.producer_pool.acquire(block=True, timeout=self._timeout) as producer:
                producer.publish(
                    body_of(message),
                    exchange=DEAD_LETTER_EXCHANGE,
                    routing_key=dead_letter_queue_name(queue),
                    headers=headers,
                    # Raw bytes go out as they came (no serializer runs when a
                    # content type is given).
                    content_type=message.content_type or "application/octet-stream",
                    content_encoding=message.content_encoding or "binary",
                    delivery_mode=PERSISTENT,
                    mandatory=True,
                    retry=True,
                    retry_policy=_RETRY_POLICY,
                    timeout=self._timeout,
                    confirm_timeout=self._timeout,
                    **extra,
                )
        except Exception:
            # It stays in the queue: the caller requeues it.
            log.error("deadletter.publish_failed", queue=queue, reason=str(reason),
                      exc_info=True)
            return False
        self._metrics.dead_lettered(queue, reason.value)
        return True
