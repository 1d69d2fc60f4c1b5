"""A worker does not run a task id again once it knows the task ended."""

from __future__ import annotations

import uuid

import pytest

from broker.celery_protocol import encode_task
from broker.events import TaskState
from broker.settings import Settings
from tests.support.events import StreamEvents
from tests.support.processes import Proc
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
