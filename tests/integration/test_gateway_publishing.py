"""What the gateway answers is what RabbitMQ holds: confirms, nacks and batches of publishes.

The gateway writes the publishes of one event-loop iteration as one batch and
matches each confirm to its submission by delivery tag; these tests would catch
a 202 for a message the broker refused, or two submissions sharing an answer.
Each uses its own task queue with no worker on it, so the queue's contents
are exactly what was accepted.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest_asyncio

from broker.settings import Settings
from tests.support.gateway import Gateway, running_gateway


def own_queue(settings: Settings, max_length: int) -> Settings:
    return settings.model_copy(update={"task_queue": f"publishing-{uuid.uuid4().hex[:8]}",
                                       "queue_max_length": max_length})


async def queued_task_ids(settings: Settings) -> list[str]:
    """Take every message off the test's queue; the ids in queue order."""
    connection = await aio_pika.connect(settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(settings.task_queue, passive=True)
        ids = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            headers: dict[str, Any] = message.headers
            assert message.correlation_id == headers["id"]
            ids.append(str(headers["id"]))
        await queue.delete(if_unused=False, if_empty=False)
        return ids


async def post_distance(gw: Gateway, n: int) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with gw.http.post(f"{gw.url}/distance/", params={"x": n, "y": 0}) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


@pytest_asyncio.fixture
async def small_queue(rabbitmq: Settings) -> AsyncIterator[tuple[Gateway, Settings]]:
    settings = own_queue(rabbitmq, max_length=4)
    async with running_gateway(settings) as gw:
        yield gw, settings


async def test_a_full_queue_answers_429_with_retry_after_and_holds_exactly_what_was_accepted(
    small_queue: tuple[Gateway, Settings],
) -> None:
    gw, settings = small_queue
    # A burst at a queue with room for 4. RabbitMQ's quorum queues apply the
    # limit approximately under concurrent publishes (a few more may get in),
    # so the check is the invariant: every 202 is in the queue, every other
    # answer is a 429, and nothing else is in the queue.
    burst = await asyncio.gather(*(post_distance(gw, n) for n in range(30)))
    accepted = [doc["task_id"] for status, doc, _ in burst if status == 202]
    refused = [(doc, headers) for status, doc, headers in burst if status != 202]
    assert len(accepted) >= 4
    # Once over the limit, the queue refuses.
    refused.append((await post_distance(gw, 99))[1:])
    for doc, headers in refused:
        assert doc["error"]["code"] == "queue_full", doc
        assert int(headers["Retry-After"]) >= 1
    assert sorted(await queued_task_ids(settings)) == sorted(accepted)


async def test_a_burst_of_concurrent_submissions_is_each_confirmed_under_its_own_id(
    rabbitmq: Settings,
) -> None:
    settings = own_queue(rabbitmq, max_length=10_000)
    async with running_gateway(settings) as gw:
        answers = await asyncio.gather(*(post_distance(gw, n) for n in range(300)))
        assert {status for status, _, _ in answers} == {202}
        accepted = [doc["task_id"] for _, doc, _ in answers]
        assert len(set(accepted)) == 300
        assert sorted(await queued_task_ids(settings)) == sorted(accepted)
