"""The drain's floor peer: bare Celery that keeps Cargo's one costly guarantee, and nothing else.

Cargo acknowledges a task only after its outcome is confirmed on the events
stream. This peer is the bare app (``bench.peers.celery_bare``: same quorum
queue, late acks, prefetch 1, confirms) plus the least work that guarantee can
cost per task: each prefork child, on ``task_success``, publishes one small
outcome message to a stream queue of its own (``OUTCOME_STREAM``) and blocks on
the publisher confirm before the task returns, so Celery's late ack follows the
confirm. No lifecycle `started`, no merging, no relay, no checks, no metrics.

What Cargo gives up against this peer is the cost of Cargo's own code; what
this peer gives up against bare Celery is the price of the guarantee itself on
this machine, whatever the design around it (a per-task confirmed write).

Started with ``celery -A bench.peers.celery_outcomes:app worker …``; ``app`` is
built on first access from ``BENCH_CELERY_URL`` (nothing is read at import).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import time
from typing import Any

import aio_pika
import amqp
import celery
import kombu
from aio_pika.abc import AbstractIncomingMessage
from celery import signals

from bench.peers import celery_bare
from broker.settings import Settings, load_settings

QUEUE = celery_bare.QUEUE
URL_VARIABLE = celery_bare.URL_VARIABLE
OUTCOME_STREAM = "bench.outcomes.stream"


class OutcomeWriter:
    """One confirmed py-amqp channel per prefork child, opened after the fork."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._channel: Any = None

    def open(self, **_: Any) -> None:
        connection = kombu.Connection(self._settings.rabbitmq_url,
                                      transport_options={"confirm_publish": True})
        self._channel = connection.default_channel
        self._channel.queue_declare(OUTCOME_STREAM, durable=True, auto_delete=False,
                                    arguments={"x-queue-type": "stream"})

    def write(self, sender: Any = None, result: Any = None, **_: Any) -> None:
        body = json.dumps({"task_id": sender.request.id, "state": "succeeded",
                           "result": result, "ts": time.time()}).encode()
        # confirm_publish=True: basic_publish returns once RabbitMQ confirmed it.
        self._channel.basic_publish(amqp.Message(body, delivery_mode=2),
                                    exchange="", routing_key=OUTCOME_STREAM)


def create_app(settings: Settings) -> celery.Celery:
    app = celery_bare.create_app(settings)
    writer = OutcomeWriter(settings)
    app.outcome_writer = writer  # type: ignore[attr-defined]  # the signals hold weak refs
    signals.worker_process_init.connect(writer.open, weak=False)
    signals.task_success.connect(writer.write, weak=False)
    return app


async def delete_outcomes(url: str) -> None:
    """Start a drain with no outcome stream (the children declare it again)."""
    async with await aio_pika.connect(url, timeout=10) as connection:
        channel = await connection.channel()
        await channel.queue_delete(OUTCOME_STREAM)


async def count_outcomes(url: str, expected: int, timeout: float) -> int:
    """The outcome messages on the stream (read from its first offset), once ``expected``
    arrived or ``timeout`` passed: the cross-check that every task paid for its write.
    (A stream's ``queue.declare-ok`` always reports 0 messages, so they are read.)"""
    seen = 0
    arrived = asyncio.Event()

    async def count(message: AbstractIncomingMessage) -> None:
        nonlocal seen
        seen += 1
        await message.ack()
        if seen >= expected:
            arrived.set()

    async with await aio_pika.connect(url, timeout=10) as connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.declare_queue(OUTCOME_STREAM, passive=True)
        await queue.consume(count, arguments={"x-stream-offset": "first"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), timeout)
    return seen


@functools.cache
def cli_app(url: str) -> celery.Celery:
    """One app (and one pair of signal handlers) per process, however often ``-A`` asks."""
    return create_app(load_settings({"RABBITMQ_URL": url}))


def __getattr__(name: str) -> celery.Celery:  # the celery CLI's -A target, built on demand
    if name == "app":
        return cli_app(os.environ[URL_VARIABLE])
    raise AttributeError(name)
