"""The bare-Celery peer of the drain and bridge sections: Celery on Cargo's kind of queue.

The same trivial task as Cargo's ``calculate_distance`` (``math.hypot``), the same
delivery settings as Cargo's worker (late acks, reject on worker lost, prefetch 1,
publisher confirms, JSON), and a quorum queue declared with the arguments of
Cargo's task queues (``broker.topology.task_queue_arguments``, so the two cannot
drift: same delivery limit, length limit, overflow and dead-letter strategy).
What it does not have is everything Cargo adds: no lifecycle events, no result
backend, no duplicate guard, no memory guard, no metrics.

``bench.peers.celery_rpc`` is this app with results over ``rpc://`` (the
end-to-end peer); ``results`` below is the only difference between the two.

The worker loads it with ``celery -A bench.peers.celery_bare:app worker …``;
``app`` is built on first access from ``BENCH_CELERY_URL`` (never at import).
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import celery
import kombu

from broker.settings import Settings, load_settings
from broker.topology import task_queue_arguments

QUEUE = "bare"
TASK_NAME = "calculate_distance"
URL_VARIABLE = "BENCH_CELERY_URL"


def create_app(settings: Settings, results: str | None = None,
               queue_name: str = QUEUE) -> celery.Celery:
    """The bare app; ``results``: a result backend URL (``rpc://``), else no results;
    ``queue_name``: its queue (peers that run side by side each have their own)."""
    app = celery.Celery("bare", set_as_current=False)
    queue = kombu.Queue(queue_name, kombu.Exchange(queue_name, "direct"),
                        routing_key=queue_name,
                        queue_arguments=task_queue_arguments(queue_name, settings))
    app.conf.update(
        broker_url=settings.rabbitmq_url,
        broker_transport_options={"confirm_publish": True},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[queue],
        task_default_queue=queue_name,
        task_create_missing_queues=False,
        accept_content=["json"],
        task_serializer="json",
        result_serializer="json",
        result_backend=results,
        task_ignore_result=results is None,
        worker_hijack_root_logger=False,
    )

    @app.task(name=TASK_NAME, shared=False)  # this app's own: several apps, one process
    def calculate_distance(x: float, y: float) -> float:
        return math.hypot(x, y)

    return app


@functools.cache
def cli_app(url: str, results: str | None = None, queue_name: str = QUEUE) -> celery.Celery:
    """The app a ``celery -A`` target names, one per URL, backend and queue."""
    return create_app(load_settings({"RABBITMQ_URL": url}), results, queue_name)


def __getattr__(name: str) -> Any:  # the celery CLI's -A target, built on demand
    if name == "app":
        return cli_app(os.environ[URL_VARIABLE])
    raise AttributeError(name)
