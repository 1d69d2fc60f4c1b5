"""The end-to-end peer: the bare Celery app (``bench.peers.celery_bare``) with results
over ``rpc://``.

What the issue compares Cargo's whole path with: a producer calling ``delay()``
and then ``get()``, a plain ``celery worker -c C -P prefork`` running the same
trivial task (``math.hypot``). Everything but the result backend is the bare
app's: its quorum queue with the arguments of Cargo's task queues, late acks,
prefetch 1, publisher confirms on every publish (results included). No events,
no gateway, no WebSocket.

The worker is started with ``celery -A bench.peers.celery_rpc:app worker …``;
``app`` is built on first access from ``BENCH_CELERY_URL`` (nothing is read at
import time).
"""

from __future__ import annotations

import os

import celery

from bench.peers import celery_bare
from broker.settings import Settings

# A queue of its own (same arguments): bench.latency_floor runs it beside the floor peer.
QUEUE = f"{celery_bare.QUEUE}-rpc"
TASK_NAME = celery_bare.TASK_NAME
URL_VARIABLE = celery_bare.URL_VARIABLE
RESULTS = "rpc://"


def create_app(settings: Settings) -> celery.Celery:
    return celery_bare.create_app(settings, results=RESULTS, queue_name=QUEUE)


def __getattr__(name: str) -> celery.Celery:  # the celery CLI's -A target, built on demand
    if name == "app":
        return celery_bare.cli_app(os.environ[URL_VARIABLE], RESULTS, QUEUE)
    raise AttributeError(name)
