"""A worker's short tasks cost one stream message published by its main process; long
tasks still say ``started`` while they run (``workers.event_window``, ``workers.event_relay``).

Each test runs a worker of its own on a queue of its own, so the session worker's
tasks do not mix into what is counted.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Iterator

import pytest

from broker.events import TaskState, cursor_offset
from broker.settings import Settings
from broker.topology import event_routing_key
from tests.support.events import StreamEvents
from tests.support.processes import Proc, start_worker
from tests.support.workers import gateway_publisher, submit, wait_queue_empty
from workers.event_relay import ROUTING_KEY as RELAYED

pytestmark = pytest.mark.integration


@pytest.fixture
def own_queue(rabbitmq: Settings) -> Settings:
    return rabbitmq.model_copy(update={"task_queue": f"relay-{uuid.uuid4().hex[:8]}"})


def worker_with(settings: Settings, window: str, relay_from: str) -> Iterator[Proc]:
    proc = start_worker(settings, "relay", 2, CARGO_TASK_QUEUE=settings.task_queue,
                        CARGO_EVENTS_MERGE_WINDOW=window,
                        CARGO_EVENTS_RELAY_MIN_RUNNING=relay_from)
    yield proc
    proc.stop()


@pytest.fixture
def relaying_worker(own_queue: Settings) -> Iterator[Proc]:
    """The largest merge window, far longer than any task here, and the relay on from
    the first task held: every task is relayed."""
    yield from worker_with(own_queue, "5", "1")


@pytest.fixture
def child_publishing_worker(own_queue: Settings) -> Iterator[Proc]:
    """The default relay threshold (4 tasks held), above what 2 processes hold."""
    yield from worker_with(own_queue, "5", "4")


@pytest.fixture
def quick_worker(own_queue: Settings) -> Iterator[Proc]:
    """A merge window far shorter than the task below."""
    yield from worker_with(own_queue, "0.05", "4")


async def test_each_short_task_is_one_message_from_the_main_process_and_its_ack_follows_it(
    own_queue: Settings, relaying_worker: Proc,
) -> None:
    async with gateway_publisher(own_queue) as publisher, \
            StreamEvents(own_queue, offset="next") as stream:
        # Long enough for the main process to see the task held before it ends.
        ids = [await submit(publisher, own_queue, "sleep", [0.2]) for _ in range(12)]
        for task_id in ids:
            await stream.until_state(task_id, {"succeeded"})
        # Acknowledged: nothing ready or unacked is left behind the confirmed events.
        await wait_queue_empty(own_queue, own_queue.task_queue)
    for task_id in ids:
        events = stream.of(task_id)
        assert (events[0].state, events[-1].state) == (TaskState.STARTED, TaskState.SUCCEEDED)
        offsets = {cursor_offset(e.cursor or 0) for e in events}
        assert len(offsets) == 1, f"{task_id}: its events came in {len(offsets)} messages"
        assert stream.routing_keys[offsets.pop()] == RELAYED
    assert relaying_worker.alive()


async def test_a_worker_holding_fewer_tasks_than_the_threshold_publishes_from_its_children(
    own_queue: Settings, child_publishing_worker: Proc,
) -> None:
    async with gateway_publisher(own_queue) as publisher, \
            StreamEvents(own_queue, offset="next") as stream:
        ids = [await submit(publisher, own_queue, "calculate_distance", [i, 1])
               for i in range(20)]
        for task_id in ids:
            await stream.until_state(task_id, {"succeeded"})
    for task_id in ids:
        events = stream.of(task_id)
        assert [e.state for e in events] == [TaskState.STARTED, TaskState.SUCCEEDED]
        offsets = {cursor_offset(e.cursor or 0) for e in events}
        assert len(offsets) == 1, f"{task_id}: started and succeeded in {len(offsets)} messages"
        assert stream.routing_keys[offsets.pop()] == event_routing_key(
            "succeeded", "calculate_distance")


async def test_a_long_task_says_started_before_it_ends_and_its_outcome_comes_after(
    own_queue: Settings, quick_worker: Proc,
) -> None:
    async with gateway_publisher(own_queue) as publisher, \
            StreamEvents(own_queue, offset="next") as stream:
        task_id = await submit(publisher, own_queue, "sleep", [1.0])
        started = await stream.until_state(task_id, {"started"})
        assert [e.state for e in started] == [TaskState.STARTED]
        assert not any(e.state is TaskState.SUCCEEDED for e in stream.of(task_id)), \
            "started was held until the task ended"
        events = await stream.until_state(task_id, {"succeeded"})
    # (the built-in sleep reports progress in between)
    assert (events[0].state, events[-1].state) == (TaskState.STARTED, TaskState.SUCCEEDED)
    started_at, succeeded_at = (cursor_offset(e.cursor or 0) for e in (events[0], events[-1]))
    assert started_at < succeeded_at
    # Its events were published by the child itself, each under its own state's key.
    assert stream.routing_keys[succeeded_at] == event_routing_key("succeeded", "sleep")


async def test_a_window_of_zero_publishes_started_and_the_outcome_separately(
    own_queue: Settings,
) -> None:
    worker = await asyncio.to_thread(functools.partial(
        start_worker, own_queue, "relay-off", 2, CARGO_TASK_QUEUE=own_queue.task_queue,
        CARGO_EVENTS_MERGE_WINDOW="0"))
    try:
        async with gateway_publisher(own_queue) as publisher, \
                StreamEvents(own_queue, offset="next") as stream:
            task_id = await submit(publisher, own_queue, "calculate_distance", [3, 4])
            events = await stream.until_state(task_id, {"succeeded"})
    finally:
        await asyncio.to_thread(worker.stop)
    assert [e.state for e in events] == [TaskState.STARTED, TaskState.SUCCEEDED]
    assert len({cursor_offset(e.cursor or 0) for e in events}) == 2
