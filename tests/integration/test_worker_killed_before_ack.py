"""A worker SIGKILLed between a task's outcome and its ack (issue 11).

The chaos worker's ``succeed_then_kill_worker`` kills its own worker's whole
process group right after its ``succeeded`` event was confirmed and before the
main process could acknowledge the message (``tests.support.chaos``), every time
it runs. RabbitMQ delivers the message again to the next worker; that worker must
recognise the redelivered task as done (``workers.duplicates``) instead of
running it again, and a WebSocket subscriber must hear ``succeeded`` once.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from broker.celery_protocol import encode_task
from broker.events import TaskState, cursor_offset
from broker.settings import Settings
from tests.support.events import StreamEvents
from tests.support.eventually import eventually
from tests.support.gateway import events_of, running_gateway, terminal
from tests.support.logs import logged
from tests.support.processes import Proc, start_chaos_worker
from tests.support.workers import gateway_publisher, submit, wait_queue_empty
from workers.event_relay import ROUTING_KEY as RELAYED

pytestmark = pytest.mark.integration


async def _wait_dead(proc: Proc, timeout: float = 60) -> None:
    async def dead() -> bool:
        return not proc.alive()

    await eventually(dead, timeout, "the worker dead")


def two_addresses(url: str) -> str:
    """The same broker named twice (RABBITMQ_URL's cluster form): with and without
    its default port."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port or 5672}"
    bare = urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@{parts.hostname}"))
    with_port = urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@{host}"))
    return f"{with_port},{bare}"


# Who publishes the outcome the worker dies after: the child itself (a worker holding
# fewer tasks than the relay threshold), or the main process's relay (threshold 1).
PUBLISHERS = {"published by the child": ("1000", "task.succeeded.succeed_then_kill_worker"),
              "relayed by the main process": ("1", RELAYED)}


@pytest.mark.parametrize("outcome_by", PUBLISHERS)
@pytest.mark.parametrize("addresses", ["one broker address", "several broker addresses"])
async def test_a_worker_killed_after_its_task_succeeded_and_before_the_ack_neither_loses_nor_reruns_nor_reports_it_twice(  # noqa: E501
    rabbitmq: Settings, addresses: str, outcome_by: str,
) -> None:
    # A queue of its own, so only these two workers take the message.
    settings = rabbitmq.model_copy(update={"task_queue": f"killack-{uuid.uuid4().hex[:8]}"})
    relay_from, routing_key = PUBLISHERS[outcome_by]
    # A merge window longer than the task: its events travel together either way.
    worker_env = {"CARGO_TASK_QUEUE": settings.task_queue, "CARGO_EVENTS_MERGE_WINDOW": "5",
                  "CARGO_EVENTS_RELAY_MIN_RUNNING": relay_from}
    if addresses == "several broker addresses":
        # the workers' events stream lookup must use them as a list, as kombu does
        worker_env["RABBITMQ_URL"] = two_addresses(settings.rabbitmq_url)
    task_id = str(uuid.uuid4())
    async with running_gateway(settings) as gw, gateway_publisher(settings) as publisher, \
            StreamEvents(settings) as stream, gw.ws(f"?task_id={task_id}") as ws:
        first = await asyncio.to_thread(functools.partial(
            start_chaos_worker, settings, "killack-first", 2, **worker_env))
        try:
            await publisher.publish_task(
                encode_task(task_id, "succeed_then_kill_worker", [], {}), settings.task_queue)
            await stream.until_state(task_id, {"succeeded"})
            await _wait_dead(first)
        finally:
            await asyncio.to_thread(first.stop)
        frames = await ws.receive_until(terminal(task_id), timeout=60)
        # The unacknowledged message is still in the queue; the next worker gets it
        # redelivered. Had it run it, it would have died the same way.
        second = await asyncio.to_thread(functools.partial(
            start_chaos_worker, settings, "killack-second", 2, **worker_env))
        try:
            sentinel = await submit(publisher, settings, "calculate_distance", [6, 8])
            await stream.until_state(sentinel, {"succeeded"})
            await wait_queue_empty(settings, settings.task_queue)
            assert second.alive(), second.output()[-3000:]
            log = second.output()
        finally:
            await asyncio.to_thread(second.stop)
        # Anything the redelivery would have caused is on the stream before the
        # sentinel's end: once the gateway holds that, such a frame is before the pong.
        await gw.wait_state(sentinel, {"succeeded"})
        frames += await ws.drain()
        status, doc = await gw.task(task_id)
    states = [e.state for e in stream.of(task_id)]
    assert states.count(TaskState.STARTED) == 1, states
    [outcome] = [e for e in stream.of(task_id) if e.state is TaskState.SUCCEEDED]
    assert stream.routing_keys[cursor_offset(outcome.cursor or 0)] == routing_key
    assert states.count(TaskState.SUCCEEDED) == 1, states
    assert logged(log, "events_stream.lookup", task_id=task_id, outcome="succeeded")
    ws_states = [f["state"] for f in events_of(frames, task_id)]
    assert ws_states.count("succeeded") == 1, ws_states
    assert ws_states[-1] == "succeeded", ws_states
    assert (status, doc["state"]) == (200, "succeeded"), doc
