"""A worker does not run a task id again once it knows the task ended."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest

from broker.celery_protocol import encode_task
from broker.events import TaskState
from broker.settings import Settings
from tests.support.events import StreamEvents
from tests.support.logs import logged
from tests.support.processes import Proc, start_worker
from tests.support.workers import gateway_publisher, submit, wait_queue_empty

pytestmark = pytest.mark.integration


async def test_the_same_task_id_published_again_after_it_succeeded_runs_once(
    rabbitmq: Settings, worker: Proc,
) -> None:
    task_id = str(uuid.uuid4())
    message = encode_task(task_id, "calculate_distance", [3, 4], {})
    async with gateway_publisher(rabbitmq) as publisher, StreamEvents(rabbitmq) as stream:
        await publisher.publish_task(message, rabbitmq.task_queue)
        await stream.until_state(task_id, {"succeeded"})
        await publisher.publish_task(message, rabbitmq.task_queue)
        await publisher.publish_task(message, rabbitmq.task_queue)
        # Taken and acknowledged (run or not) once a later task finished and the
        # queue is empty.
        sentinel = await submit(publisher, rabbitmq, "calculate_distance", [6, 8])
        await stream.until_state(sentinel, {"succeeded"})
        await wait_queue_empty(rabbitmq, rabbitmq.task_queue)
    states = [e.state for e in stream.of(task_id)]
    assert states.count(TaskState.STARTED) == 1, states
    assert states.count(TaskState.SUCCEEDED) == 1, states


async def test_a_redelivered_task_that_already_succeeded_elsewhere_is_not_run_again(
    rabbitmq: Settings,
) -> None:
    # Two workers one after the other on a queue of their own: the second never
    # saw the task, as after a worker died between its outcome event and its ack.
    settings = rabbitmq.model_copy(update={"task_queue": f"dup-{uuid.uuid4().hex[:8]}"})
    task_id = str(uuid.uuid4())
    message = encode_task(task_id, "calculate_distance", [3, 4], {})
    # What RabbitMQ's quorum queue puts on a message it delivers again.
    redelivery = replace(message, headers={**message.headers, "x-delivery-count": 1})
    async with gateway_publisher(settings) as publisher, StreamEvents(settings) as stream:
        first = await asyncio.to_thread(start_worker, settings, name="dup-first",
                                     CARGO_TASK_QUEUE=settings.task_queue)
        try:
            await publisher.publish_task(message, settings.task_queue)
            await stream.until_state(task_id, {"succeeded"})
        finally:
            await asyncio.to_thread(first.stop)
        second = await asyncio.to_thread(start_worker, settings, name="dup-second",
                                     CARGO_TASK_QUEUE=settings.task_queue)
        try:
            await publisher.publish_task(redelivery, settings.task_queue)
            sentinel = await submit(publisher, settings, "calculate_distance", [6, 8])
            await stream.until_state(sentinel, {"succeeded"})
            await wait_queue_empty(settings, settings.task_queue)
            log = second.output()
        finally:
            await asyncio.to_thread(second.stop)
    states = [e.state for e in stream.of(task_id)]
    assert states.count(TaskState.STARTED) == 1, states
    assert logged(log, "events_stream.lookup", task_id=task_id, outcome="succeeded")
