"""The end-to-end peer: a bare Celery app with results over ``rpc://``.

What the issue compares Cargo's whole path with: a producer calling ``delay()``
and then ``get()``, a plain ``celery worker -c C -P prefork`` running the same
trivial task (``math.hypot``), on a quorum queue, with the guarantees Cargo's
worker has (late acks, prefetch 1, publisher confirms on every publish, results
included). No events, no gateway, no WebSocket.

The worker is started with ``celery -A bench.peers.celery_rpc:app worker …``;
``app`` is built on first access from ``BENCH_PEER_URL`` (nothing is read at
import time).
"""

from __future__ import annotations

import functools
import math
import os

import celery
from kombu import Queue

PEER_QUEUE = "bench-peer-rpc"
TASK_NAME = "bench_peer.calculate_distance"
URL_VARIABLE = "BENCH_PEER_URL"


@functools.cache
def _cli_app(url: str) -> celery.Celery:
    return create_peer_app(url)


def create_peer_app(url: str) -> celery.Celery:
    app = celery.Celery("bench-peer-rpc", broker=url, backend="rpc://",
                        set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        # Every publish (tasks and results) waits for RabbitMQ's confirm.
        broker_transport_options={"confirm_publish": True},
        task_queues=[Queue(PEER_QUEUE, queue_arguments={"x-queue-type": "quorum"})],
        task_default_queue=PEER_QUEUE,
        worker_detect_quorum_queues=True,
        task_serializer="json", result_serializer="json", accept_content=["json"],
        worker_hijack_root_logger=False,
    )

    @app.task(name=TASK_NAME)
    def calculate_distance(x: float, y: float) -> float:
        return math.hypot(x, y)

    return app


def __getattr__(name: str) -> celery.Celery:  # the celery CLI's -A target, built on demand
    if name == "app":
        return _cli_app(os.environ[URL_VARIABLE])
    raise AttributeError(name)
