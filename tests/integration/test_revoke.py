"""DELETE /tasks/{id}: a queued or running task is revoked and ends ``revoked``.

Each test has a vhost and workers of its own: a revoke is a broadcast to every
worker of the vhost, and the tests need to know which workers heard it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from broker.settings import Settings
from tests.support.gateway import Gateway, events_of, running_gateway, terminal
from tests.support.processes import Proc, start_worker
from tests.support.rabbit import private_vhost

pytestmark = pytest.mark.integration


@pytest.fixture
def vhost(rabbitmq: Settings) -> Iterator[Settings]:
    with private_vhost("cargo-test-revoke") as settings:
        yield settings


@pytest.fixture
def one_child(vhost: Settings) -> Iterator[Proc]:
    """A worker with one child: a second task waits in RabbitMQ while the first runs."""
    worker = start_worker(vhost, "revoke-worker", concurrency=1)
    yield worker
    worker.stop()


async def revoke(gw: Gateway, task_id: str) -> tuple[int, Any]:
    async with gw.http.delete(f"{gw.url}/tasks/{task_id}") as resp:
        return resp.status, await resp.json()


async def test_a_running_task_is_stopped_ends_revoked_and_the_worker_keeps_serving(
    vhost: Settings, one_child: Proc,
) -> None:
    async with running_gateway(vhost) as gw:
        task_id = await gw.submit("sleep", kwargs={"seconds": 60, "steps": 60})
        async with gw.ws(f"?task_id={task_id}") as ws:
            await gw.wait_state(task_id, {"started", "progress"})
            status, doc = await revoke(gw, task_id)
            assert status == 202, doc
            assert doc["task_id"] == task_id
            frames = await ws.receive_until(terminal(task_id), timeout=60)
        states = [f["state"] for f in events_of(frames, task_id)]
        assert states[-1] == "revoked"
        assert "succeeded" not in states
        record = await gw.wait_state(task_id, {"revoked"})
        assert record["state"] == "revoked"
        # the child was replaced and the worker runs the next task
        after = await gw.submit_distance(6, 8)
        assert (await gw.wait_state(after, {"succeeded"}))["result"] == 10.0
    assert one_child.alive()


async def test_a_queued_task_that_is_revoked_never_starts(
    vhost: Settings, one_child: Proc,
) -> None:
    async with running_gateway(vhost) as gw:
        busy = await gw.submit("sleep", kwargs={"seconds": 3})
        await gw.wait_state(busy, {"started", "progress"})
        queued = await gw.submit_distance()  # waits in RabbitMQ behind the sleep
        async with gw.ws(f"?task_id={queued}") as ws:
            status, doc = await revoke(gw, queued)
            assert status == 202, doc
            assert doc["state"] == "queued"
            frames = await ws.receive_until(terminal(queued), timeout=60)
        states = [f["state"] for f in events_of(frames, queued)]
        assert states[-1] == "revoked"
        assert "started" not in states
        assert (await gw.wait_state(busy, {"succeeded"}))["result"] == 3


async def test_a_task_revoked_before_any_worker_ran_is_stopped_by_the_worker_that_starts_it(
    vhost: Settings,
) -> None:
    async with running_gateway(vhost) as gw:
        task_id = await gw.submit("sleep", kwargs={"seconds": 60, "steps": 60})
        status, _doc = await revoke(gw, task_id)  # no worker hears this broadcast
        assert status == 202
        worker = await asyncio.to_thread(start_worker, vhost, "late-worker", 1)
        try:
            async with gw.ws(f"?task_id={task_id}") as ws:
                frames = await ws.receive_until(terminal(task_id), timeout=90)
        finally:
            await asyncio.to_thread(worker.stop)
        states = [f["state"] for f in events_of(frames, task_id)]
        # it started on a worker that never heard the first revoke; the gateway repeated it
        assert states[-1] == "revoked"
        assert "succeeded" not in states


async def test_revoking_an_unknown_task_is_404_and_a_finished_one_is_409(
    rabbitmq: Settings, worker: Proc,
) -> None:
    async with running_gateway(rabbitmq) as gw:
        status, doc = await revoke(gw, "no-such-task")
        assert status == 404
        assert doc["error"]["code"] == "task_not_found"
        done = await gw.submit_distance()
        await gw.wait_state(done, {"succeeded"})
        status, doc = await revoke(gw, done)
        assert status == 409
        assert doc["error"]["code"] == "task_finished"
        assert "succeeded" in doc["error"]["message"]
        status, record = await gw.task(done)
        assert record["state"] == "succeeded"  # unchanged
