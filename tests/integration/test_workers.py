"""Real Celery workers against the real RabbitMQ, observed through the real events stream."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery.app.task import Task

from broker.declare import declare_topology, declare_with_kombu
from broker.events import TaskEvent
from broker.settings import Settings
from broker.topology import build_topology
from tests.support.events import StreamEvents
from tests.support.processes import Proc, start_worker
from tests.support.rabbit import private_vhost
from tests.support.workers import (
    declared_differences,
    gateway_publisher,
    start_celery_cli_worker,
    submit,
    wait_queue_empty,
)
from workers.app import create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh_vhost(rabbitmq: Settings) -> Iterator[Settings]:
    """A vhost of its own, so no other worker (the session's) can take its tasks."""
    with private_vhost("cargo-test-workers") as settings:
        yield settings


def states(events: list[TaskEvent]) -> list[str]:
    return [e.state.value for e in events]


# a) the gateway's wire format runs on the unmodified Celery CLI


async def test_a_message_published_by_the_gateway_publisher_is_executed_by_an_unmodified_celery_worker(  # noqa: E501
    fresh_vhost: Settings,
) -> None:
    nodename = f"plain-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    worker = await asyncio.to_thread(start_celery_cli_worker, fresh_vhost, nodename)
    try:
        async with StreamEvents(fresh_vhost) as events, gateway_publisher(fresh_vhost) as pub:
            task_id = await submit(pub, fresh_vhost, "calculate_distance", [3, 4])
            history = await events.until_state(task_id)
    finally:
        worker.stop()
    assert states(history) == ["started", "succeeded"]
    assert history[-1].result == 5.0
    assert {e.hostname for e in history} == {nodename}
    assert {e.queue for e in history} == {fresh_vhost.task_queue}
    assert {e.name for e in history} == {"calculate_distance"}
    assert {e.retries for e in history} == {0}


# b) declarations: either side first, and the worker alone


def _declare_as_the_celery_worker(settings: Settings) -> None:
    app = create_app(settings)
    with app.connection_for_write() as connection:
        declare_with_kombu(connection, build_topology(settings))
        # and the task queues exactly as Celery's own consumer declares them
        for queue in app.amqp.queues.values():
            queue(connection.default_channel).declare()


def _declare_as_the_gateway(settings: Settings) -> None:
    async def declare() -> None:
        import aio_pika

        connection = await aio_pika.connect(settings.rabbitmq_url, timeout=10)
        async with connection:
            await declare_topology(await connection.channel(), build_topology(settings))

    asyncio.run(declare())


@pytest.mark.parametrize("order", [("celery", "gateway"), ("gateway", "celery")],
                         ids=["celery-first", "gateway-first"])
def test_the_topology_can_be_declared_by_either_side_first_and_again_without_conflict(
    rabbitmq: Settings, order: tuple[str, str]
) -> None:
    declare = {"celery": _declare_as_the_celery_worker, "gateway": _declare_as_the_gateway}
    with private_vhost("cargo-test-declare") as settings:
        # Any difference in arguments would make RabbitMQ close the channel with
        # PRECONDITION_FAILED on the second declaration, raising here.
        for side in (*order, *order):
            declare[side](settings)
        assert asyncio.run(declared_differences(settings, build_topology(settings))) == []


def test_a_worker_alone_declares_the_whole_topology(fresh_vhost: Settings) -> None:
    worker = start_worker(fresh_vhost, name="lonely", concurrency=1)
    try:
        assert asyncio.run(declared_differences(fresh_vhost, build_topology(fresh_vhost))) == []
        assert worker.alive()
    finally:
        worker.stop()


async def test_a_worker_starting_after_the_gateway_declared_consumes_and_runs_tasks(
    fresh_vhost: Settings,
) -> None:
    async with gateway_publisher(fresh_vhost) as pub:  # declares with aio-pika on connect
        worker: Proc = await asyncio.to_thread(start_worker, fresh_vhost, "late", 1)
        try:
            async with StreamEvents(fresh_vhost) as events:
                task_id = await submit(pub, fresh_vhost, "calculate_distance", [6, 8])
                history = await events.until_state(task_id)
            assert worker.alive()
        finally:
            worker.stop()
    assert states(history) == ["started", "succeeded"]
    assert history[-1].result == 10.0
    assert "PRECONDITION_FAILED" not in worker.log_path.read_text(errors="replace")


# c) progress


async def test_progress_events_of_sleep_arrive_in_order_between_started_and_succeeded(
    rabbitmq: Settings, worker: Proc
) -> None:
    async with StreamEvents(rabbitmq) as events, gateway_publisher(rabbitmq) as pub:
        task_id = await submit(pub, rabbitmq, "sleep", [0.3], {"steps": 3})
        history = await events.until_state(task_id)
    assert states(history) == ["started", "progress", "progress", "progress", "succeeded"]
    assert [e.progress for e in history[1:4]] == [
        {"done": 1, "total": 3}, {"done": 2, "total": 3}, {"done": 3, "total": 3}]
    assert history[-1].result == 0.3
    cursors = [e.cursor for e in history if e.cursor is not None]
    assert len(cursors) == len(history)
    assert cursors == sorted(cursors)


# d) a worker killed mid-task


async def test_a_task_whose_worker_is_killed_mid_task_is_redelivered_to_another_worker_and_finishes(
    fresh_vhost: Settings,
) -> None:
    doomed: Proc = await asyncio.to_thread(start_worker, fresh_vhost, "doomed", 1)
    rescuer: Proc | None = None
    try:
        async with StreamEvents(fresh_vhost) as events, gateway_publisher(fresh_vhost) as pub:
            task_id = await submit(pub, fresh_vhost, "sleep", [8], {"steps": 8})
            # Mid-task: it started and reported its first step, with seven to go.
            await events.wait(lambda _: "progress" in states(events.of(task_id)),
                              what="first progress event")
            doomed.kill()  # SIGKILL to the whole process group: main process and children
            await asyncio.to_thread(doomed.popen.wait, 30)
            rescuer = await asyncio.to_thread(start_worker, fresh_vhost, "rescuer", 1)
            history = await events.until_state(task_id, timeout=120)
        await wait_queue_empty(fresh_vhost, fresh_vhost.task_queue)
    finally:
        doomed.stop()
        if rescuer is not None:
            rescuer.stop()
    started = [e for e in history if e.state.value == "started"]
    assert len(started) == 2, states(history)
    assert (started[0].hostname or "").startswith("doomed-")
    assert (started[1].hostname or "").startswith("rescuer-")
    final = history[-1]
    assert final.state.value == "succeeded"
    assert final.hostname == started[1].hostname
    assert final.result == 8.0
    assert states(history).count("succeeded") == 1


# e) bad arguments that bypassed the gateway


async def test_calculate_distance_sent_strings_by_a_raw_celery_client_fails_naming_the_problem(
    rabbitmq: Settings, worker: Proc
) -> None:
    app = create_app(rabbitmq)
    task_id = str(uuid.uuid4())

    def send() -> None:
        # Celery's own client, which validates nothing: the worker must.
        with app.connection_for_write() as connection:
            app.send_task("calculate_distance", args=["three", "four"], task_id=task_id,
                          connection=connection)

    async with StreamEvents(rabbitmq) as events:
        await asyncio.to_thread(send)
        history = await events.until_state(task_id, {"failed", "succeeded"})
    assert states(history) == ["started", "failed"]
    error = history[-1].error
    assert error is not None
    assert error["type"] == "TypeError"
    assert "calculate_distance()" in error["message"]
    assert "args.0" in error["message"]
    assert "valid number" in error["message"]



# lifecycle details, run in-process through Celery's own tracer (task.apply)


async def test_a_task_that_retries_emits_failed_retrying_then_started_again_and_succeeded(
    rabbitmq: Settings,
) -> None:
    app = create_app(rabbitmq)

    @app.task(bind=True, name="test_flaky", max_retries=1, default_retry_delay=0, shared=False)
    def flaky(self: Task[Any, Any]) -> str:
        if self.request.retries < 1:
            raise self.retry(exc=ValueError("not yet"))
        return "ok"

    task_id = str(uuid.uuid4())
    await asyncio.to_thread(_declare_as_the_celery_worker, rabbitmq)  # no worker here
    async with StreamEvents(rabbitmq) as events:
        result = await asyncio.to_thread(flaky.apply, task_id=task_id)
        history = await events.until_state(task_id)
    assert result.get() == "ok"
    assert states(history) == ["started", "failed", "retrying", "started", "succeeded"]
    assert history[1].error == {"type": "ValueError", "message": "not yet"}
    assert [e.retries for e in history] == [0, 0, 1, 1, 1]
    assert history[-1].result == "ok"
