"""A countdown in a vhost where no Celery worker ever ran (issue 11).

A countdown is published to Celery's delayed-delivery exchange. Had only the
worker declared it, RabbitMQ would answer that publish with 404 NOT_FOUND and
close the gateway's confirm channel under every other client's submission.
Each test gets a brand-new vhost, so nothing is declared before the gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import kombu
import pytest
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    declare_native_delayed_delivery_exchanges_and_queues,
)

from broker.declare import celery_routing, kombu_task_queues
from broker.settings import Settings
from broker.topology import build_topology
from gateway.keys import BROKER_KEY
from tests.support.gateway import Gateway, running_gateway
from tests.support.processes import Proc, start_worker
from tests.support.rabbit import private_vhost
from tests.support.workers import declared_differences

pytestmark = pytest.mark.integration

BURST = 20


@pytest.fixture
def fresh_vhost(rabbitmq: Settings) -> Iterator[Settings]:
    """A vhost of its own (deleted afterwards) in which no worker has declared anything."""
    with private_vhost("cargo-delayed") as settings:
        yield settings


async def post_status(gw: Gateway, name: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with gw.http.post(f"{gw.url}/tasks/{name}", json=body) as resp:
        return resp.status, await resp.json()


async def readyz_statuses(gw: Gateway, done: asyncio.Event) -> list[int]:
    """/readyz, polled until ``done`` (and once more after)."""
    statuses: list[int] = []
    while True:
        finished = done.is_set()
        async with gw.http.get(f"{gw.url}/readyz") as resp:
            statuses.append(resp.status)
        if finished:
            return statuses
        await asyncio.sleep(0.05)


def declare_as_celery_worker(settings: Settings) -> None:
    """What a Celery worker declares, with kombu's own functions: its task queues
    (consumer start), then its DelayedDelivery bootstep. Raises if RabbitMQ refuses
    a redeclaration (the bootstep itself only logs a warning and carries on)."""
    topology = build_topology(settings)
    queue_type = celery_routing(topology)["broker_native_delayed_delivery_queue_type"]
    with kombu.Connection(settings.rabbitmq_url, connect_timeout=10) as connection:
        for queue in kombu_task_queues(topology):
            queue(connection.default_channel).declare()
        declare_native_delayed_delivery_exchanges_and_queues(connection, queue_type)
        for queue in kombu_task_queues(topology):
            bind_queue_to_native_delayed_delivery_exchange(connection, queue)


async def submit_countdown_and_burst(gw: Gateway) -> tuple[int, Any]:
    """A countdown submission amid a burst of plain ones, with /readyz polled
    throughout; asserts the burst, /readyz and the confirm channel all held."""
    broker = gw.app[BROKER_KEY]
    channel = broker.confirm_channel
    assert channel is not None
    done = asyncio.Event()
    readyz = asyncio.create_task(readyz_statuses(gw, done))

    delayed, *burst = await asyncio.gather(
        post_status(gw, "calculate_distance", {"args": [3, 4], "options": {"countdown": 1}}),
        *(post_status(gw, "calculate_distance", {"args": [6, 8]}) for _ in range(BURST)))
    done.set()

    assert [status for status, _ in burst] == [202] * BURST, burst
    # The confirm channel the gateway opened at start is the one still in use.
    assert broker.confirm_channel is channel
    assert not channel.is_closed
    assert set(await asyncio.wait_for(readyz, 30)) == {200}
    return delayed


async def start_worker_off_loop(settings: Settings, name: str) -> Proc:
    # start_worker blocks (and runs its own event loop) until the worker consumes.
    return await asyncio.to_thread(start_worker, settings, name)


async def test_a_countdown_before_any_worker_ran_keeps_the_gateway_channel_and_runs_later(
    fresh_vhost: Settings,
) -> None:
    async with running_gateway(fresh_vhost) as gw:
        broker = gw.app[BROKER_KEY]
        channel = broker.confirm_channel

        status, accepted = await submit_countdown_and_burst(gw)
        assert status == 202, accepted

        # A Celery worker's own declarations on top of the gateway's: all identical.
        await asyncio.to_thread(declare_as_celery_worker, fresh_vhost)
        worker = await start_worker_off_loop(fresh_vhost, "delayed-after-gateway")
        try:
            doc = await gw.wait_state(accepted["task_id"], {"succeeded"}, timeout=120)
            assert await declared_differences(fresh_vhost, build_topology(fresh_vhost)) == []
        finally:
            await asyncio.to_thread(worker.stop)
        assert doc["result"] == 5.0
        # ...and not before its countdown (the ``queued`` time is taken before the publish)
        assert (datetime.fromisoformat(doc["started_at"])
                - datetime.fromisoformat(doc["submitted_at"])).total_seconds() >= 1, doc
        assert "Failed to declare exchanges" not in worker.log_path.read_text(errors="replace")
        assert broker.confirm_channel is channel


async def test_a_gateway_starting_after_a_celery_worker_declared_redeclares_without_refusal(
    fresh_vhost: Settings,
) -> None:
    # Worker first: kombu's declarations, then the gateway's aio-pika ones on top.
    await asyncio.to_thread(declare_as_celery_worker, fresh_vhost)
    async with running_gateway(fresh_vhost) as gw:
        assert gw.app[BROKER_KEY].last_error is None
        status, accepted = await submit_countdown_and_burst(gw)
        assert status == 202, accepted

        worker = await start_worker_off_loop(fresh_vhost, "delayed-before-gateway")
        try:
            doc = await gw.wait_state(accepted["task_id"], {"succeeded"}, timeout=120)
        finally:
            await asyncio.to_thread(worker.stop)
    assert doc["result"] == 5.0
    assert await declared_differences(fresh_vhost, build_topology(fresh_vhost)) == []
