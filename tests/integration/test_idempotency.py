"""Idempotent submission (API.md): one task per key, whichever way and wherever it is sent.

Most tests use a task queue of their own with no worker on it, so what the queue
holds is exactly what the gateways published.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aio_pika
import pytest

from broker.events import TaskState
from broker.settings import Settings
from gateway.idempotency import Standing, key_digest
from gateway.keys import IDEMPOTENCY_KEY
from tests.integration.test_broker_link import gateway_behind
from tests.support.events import StreamEvents
from tests.support.eventually import eventually
from tests.support.gateway import Gateway, running_gateway
from tests.support.processes import Proc
from tests.support.workers import wait_queue_empty

pytestmark = pytest.mark.integration


def own_queue(settings: Settings) -> Settings:
    return settings.model_copy(update={"task_queue": f"idempotency-{uuid.uuid4().hex[:8]}"})


async def queued_task_ids(settings: Settings) -> list[str]:
    """Take every message off the test's queue; their task ids."""
    connection = await aio_pika.connect(settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(settings.task_queue, passive=True)
        ids = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            ids.append(str(message.headers["id"]))
        await queue.delete(if_unused=False, if_empty=False)
        return ids


async def post(gw: Gateway, body: dict[str, Any], key: str | None = None,
               name: str = "calculate_distance") -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"Idempotency-Key": key} if key is not None else {}
    async with gw.http.post(f"{gw.url}/tasks/{name}", json=body, headers=headers) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


async def test_the_header_and_the_option_are_one_key_and_a_repeat_publishes_nothing(
    rabbitmq: Settings,
) -> None:
    settings = own_queue(rabbitmq)
    key = f"order-{uuid.uuid4()}"
    async with running_gateway(settings) as gw:
        first = await post(gw, {"args": [3, 4]}, key=key)
        again = await post(gw, {"args": [3, 4], "options": {"idempotency_key": key}})
        both = await post(gw, {"args": [3, 4], "options": {"idempotency_key": key}}, key=key)
        async with gw.http.post(f"{gw.url}/distance/", params={"x": 3, "y": 4},
                                headers={"Idempotency-Key": f'"{key}"'}) as resp:
            distance = resp.status, await resp.json(), dict(resp.headers)
    assert first[0] == 202, first
    assert "Idempotent-Replayed" not in first[2]
    for answer in (again, both, distance):
        assert answer[0] == 202, answer
        assert answer[1] == first[1]
        assert answer[2]["Idempotent-Replayed"] == "true"
    assert await queued_task_ids(settings) == [first[1]["task_id"]]


async def test_the_same_key_with_a_different_request_is_422_and_publishes_nothing(
    rabbitmq: Settings,
) -> None:
    settings = own_queue(rabbitmq)
    key = f"order-{uuid.uuid4()}"
    async with running_gateway(settings) as gw:
        first = await post(gw, {"args": [3, 4]}, key=key)
        other_args = await post(gw, {"args": [6, 8]}, key=key)
        other_options = await post(gw, {"args": [3, 4], "options": {"priority": 5}}, key=key)
        conflicting = await post(gw, {"args": [3, 4], "options": {"idempotency_key": "x"}},
                                 key=key)
    assert first[0] == 202, first
    for answer, code in ((other_args, "idempotency_key_reused"),
                         (other_options, "idempotency_key_reused"),
                         (conflicting, "idempotency_key_conflict")):
        assert answer[0] == 422, answer
        assert answer[1]["error"]["code"] == code
    assert await queued_task_ids(settings) == [first[1]["task_id"]]


async def test_a_duplicate_arriving_while_the_first_is_unconfirmed_is_409_then_the_first_task(
    rabbitmq: Settings,
) -> None:
    settings = own_queue(rabbitmq)
    key = f"order-{uuid.uuid4()}"
    async with gateway_behind(settings) as (gw, proxy):
        proxy.stall()  # the broker's confirms are held back
        first = asyncio.create_task(post(gw, {"args": [3, 4]}, key=key))
        async def standing() -> Standing | None:
            return gw.app[IDEMPOTENCY_KEY].standing(key_digest(key))

        await eventually(standing, 30, "the gateway publishing the first",
                         until=lambda standing: standing is Standing.PENDING)
        duplicate = await post(gw, {"args": [3, 4]}, key=key)
        proxy.thaw()
        accepted = await asyncio.wait_for(first, 60)
        later = await post(gw, {"args": [3, 4]}, key=key)
    assert duplicate[0] == 409, duplicate
    assert duplicate[1]["error"]["code"] == "idempotency_key_in_flight"
    assert "Retry-After" in duplicate[2]
    assert accepted[0] == 202, accepted
    assert later[0] == 202, later
    assert later[1]["task_id"] == accepted[1]["task_id"]
    assert await queued_task_ids(settings) == [accepted[1]["task_id"]]


async def test_a_key_accepted_by_one_replica_is_known_to_another(rabbitmq: Settings) -> None:
    settings = own_queue(rabbitmq)
    key = f"order-{uuid.uuid4()}"
    async with running_gateway(settings) as first_replica, \
            running_gateway(settings) as second_replica:
        first = await post(first_replica, {"args": [3, 4]}, key=key)
        assert first[0] == 202, first
        # Once the other replica read the announcement from the events stream...
        await second_replica.wait_state(first[1]["task_id"], {"queued"}, timeout=60)
        same = await post(second_replica, {"args": [3, 4]}, key=key)
        different = await post(second_replica, {"args": [6, 8]}, key=key)
    assert same[0] == 202, same
    assert same[1] == first[1]
    # ...it knows the request the key stands for, not only the task id.
    assert different[0] == 422, different
    assert await queued_task_ids(settings) == [first[1]["task_id"]]


async def test_the_same_key_submitted_again_after_the_task_ran_does_not_run_it_again(
    rabbitmq: Settings, worker: Proc,
) -> None:
    key = f"order-{uuid.uuid4()}"
    async with running_gateway(rabbitmq) as gw, StreamEvents(rabbitmq) as stream:
        first = await post(gw, {"args": [3, 4]}, key=key)
        task_id = first[1]["task_id"]
        await stream.until_state(task_id, {"succeeded"})
        again = await post(gw, {"args": [3, 4]}, key=key)
        # Anything published again would have been taken and acknowledged by now,
        # and its ``queued`` announced before the sentinel's (one announcer, in order).
        sentinel = await gw.submit("calculate_distance", args=[6, 8])
        await stream.until_state(sentinel, {"succeeded"})
        await stream.until_state(sentinel, {"queued"})
        await wait_queue_empty(rabbitmq, rabbitmq.task_queue)
    assert again[0] == 202, again
    assert again[1]["task_id"] == task_id
    states = [e.state for e in stream.of(task_id)]
    assert states.count(TaskState.QUEUED) == 1, states  # published once
    assert states.count(TaskState.STARTED) == 1, states  # run once
