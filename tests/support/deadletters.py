"""Helpers for dead-letter tests: a vhost with small limits, raw publishes, DLQ reads."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aio_pika

from broker.management import ManagementClient
from broker.settings import Settings, load_settings
from broker.topology import TASKS_EXCHANGE, dead_letter_queue_name
from tests.support.eventually import eventually
from tests.support.processes import Proc, start_chaos_worker
from tests.support.rabbit import private_vhost

# Small limits so every failure path runs in seconds.
DELIVERY_LIMIT = 2
TIME_LIMIT = 2
MEMORY_LIMIT_MB = 96
TASK_LIMITS = {"sleep": {"time_limit": TIME_LIMIT},
               "memory_leak_task": {"memory_mb": MEMORY_LIMIT_MB}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def limited_env() -> dict[str, str]:
    return {"CARGO_DELIVERY_LIMIT": str(DELIVERY_LIMIT),
            "CARGO_TASK_LIMITS": json.dumps(TASK_LIMITS)}


@contextmanager
def chaos_vhost(prefix: str, concurrency: int = 2,
                metrics_port: int = 0) -> Iterator[tuple[Settings, Proc]]:
    """A private vhost with small limits and a chaos worker (``tests.support.chaos``)."""
    with private_vhost(prefix) as base:
        env = {"RABBITMQ_URL": base.rabbitmq_url, **limited_env()}
        if base.management_url:
            env["CARGO_MANAGEMENT_URL"] = base.management_url
        settings = load_settings(env)
        worker = start_chaos_worker(settings, prefix, concurrency,
                                    CARGO_WORKER_METRICS_PORT=str(metrics_port),
                                    **limited_env())
        try:
            yield settings, worker
        finally:
            worker.stop()


async def publish_raw(settings: Settings, body: bytes, headers: dict[str, Any] | None = None,
                      content_type: str | None = "application/json",
                      message_id: str | None = None) -> None:
    """Publish any bytes to the task queue, as another producer could."""
    connection = await aio_pika.connect(settings.rabbitmq_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(TASKS_EXCHANGE)
        await exchange.publish(
            aio_pika.Message(body, headers=headers, content_type=content_type,
                             message_id=message_id,
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=settings.task_queue)


async def dead_letter_messages(settings: Settings, count: int = 500) -> list[dict[str, Any]]:
    """The DLQ's messages as the management API shows them (left in the queue)."""
    async with ManagementClient(settings.management_api) as api:
        return await api.get_messages(settings.vhost, dead_letter_queue_name(settings.task_queue),
                                      count)


async def dead_letter_of(settings: Settings, task_id: str) -> dict[str, Any] | None:
    for message in await dead_letter_messages(settings):
        headers = message["properties"].get("headers") or {}
        if headers.get("id") == task_id or message["properties"].get("message_id") == task_id:
            return message
    return None


async def wait_dead_letter(settings: Settings, task_id: str,
                           timeout: float = 60) -> dict[str, Any]:
    message = await eventually(lambda: dead_letter_of(settings, task_id), timeout,
                               f"{task_id} in the dead-letter queue")
    return message


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:  # a local test URL
        return str(resp.read().decode())


def metric_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format (None when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        sample, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in sample for k, v in labels.items()):
            return float(value)
    return None
