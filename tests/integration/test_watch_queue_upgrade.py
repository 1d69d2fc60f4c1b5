"""Upgrading a vhost whose ``<queue>.XQ.watch`` an older Cargo declared (no delivery limit).

RabbitMQ refuses to redeclare a queue with other arguments. The watch queue
only holds notices, so the gateway and the workers keep using the old one
(with a warning) instead of failing to start, and ``cargoctl topology declare
--replace-outdated-watch-queues`` recreates it with the delivery limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest

from broker.management import ManagementClient
from broker.settings import Settings
from broker.topology import (
    DEAD_LETTER_EXCHANGE,
    WATCH_DELIVERY_LIMIT,
    WATCH_MAX_LENGTH,
    dead_letter_queue_name,
    dead_letter_watch_queue_name,
)
from tests.support.eventually import eventually
from tests.support.gateway import running_gateway
from tests.support.processes import BIN, process_env, start_worker
from tests.support.rabbit import private_vhost

pytestmark = pytest.mark.integration

# What Cargo declared before the watch queue had a delivery limit.
OLD_WATCH_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "quorum", "x-max-length": WATCH_MAX_LENGTH, "x-overflow": "drop-head"}


@pytest.fixture
def old_vhost(rabbitmq: Settings) -> Iterator[Settings]:
    """A vhost holding the watch queue as an older Cargo declared it."""
    with private_vhost("cargo-test-watch-upgrade") as settings:
        async def declare_old() -> None:
            connection = await aio_pika.connect(settings.rabbitmq_url, timeout=10)
            async with connection:
                channel = await connection.channel()
                await channel.declare_exchange(DEAD_LETTER_EXCHANGE, "direct", durable=True)
                queue = await channel.declare_queue(
                    dead_letter_watch_queue_name(settings.task_queue), durable=True,
                    arguments=OLD_WATCH_ARGUMENTS)
                await queue.bind(DEAD_LETTER_EXCHANGE,
                                 dead_letter_queue_name(settings.task_queue))

        asyncio.run(declare_old())
        yield settings


async def watch_queue(settings: Settings) -> dict[str, Any]:
    async with ManagementClient(settings.management_api) as api:
        info: dict[str, Any] = await api.get_queue(
            settings.vhost, dead_letter_watch_queue_name(settings.task_queue))
    return info


def cargoctl(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "cargoctl"), *args], env=process_env(settings),
                          capture_output=True, text=True, timeout=60, check=False)


async def test_gateway_and_worker_start_on_an_older_watch_queue_and_the_worker_reads_it(
    old_vhost: Settings,
) -> None:
    async with running_gateway(old_vhost):  # ready: topology declared
        pass
    worker = await asyncio.to_thread(start_worker, old_vhost, "watch-upgrade", 1)
    try:
        with contextlib.suppress(TimeoutError):  # the assertion below says what was missing
            await eventually(lambda: watch_queue(old_vhost), 60, "a consumer on the watch queue",
                             until=lambda info: bool(info.get("consumers")))
        info = await watch_queue(old_vhost)
        assert info.get("consumers") == 1  # the watcher consumes the old queue
        assert worker.alive()
        assert "declared by an older Cargo" in worker.output()
    finally:
        worker.stop()
    assert info["arguments"] == OLD_WATCH_ARGUMENTS  # left as it was


async def test_cargoctl_topology_declare_names_the_outdated_watch_queue_and_can_replace_it(
    old_vhost: Settings,
) -> None:
    plain = await asyncio.to_thread(cargoctl, old_vhost, "topology", "declare")
    assert plain.returncode == 0, plain.stderr
    assert "--replace-outdated-watch-queues" in plain.stderr
    assert "x-delivery-limit" not in (await watch_queue(old_vhost))["arguments"]

    replaced = await asyncio.to_thread(cargoctl, old_vhost, "topology", "declare",
                                       "--replace-outdated-watch-queues")
    assert replaced.returncode == 0, replaced.stderr
    assert "older Cargo" not in replaced.stderr
    arguments = (await watch_queue(old_vhost))["arguments"]
    assert arguments["x-delivery-limit"] == WATCH_DELIVERY_LIMIT
