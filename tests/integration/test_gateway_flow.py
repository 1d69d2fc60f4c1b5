"""The whole path of a job: REST -> RabbitMQ -> Celery worker -> events stream -> WebSocket."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import aiohttp
import pytest

from broker.events import TaskEvent, TaskState, utc_now
from broker.management import ManagementClient
from broker.settings import Settings
from broker.topology import CELERY_DELAYED_EXCHANGE
from tests.support.events import StreamEvents, publish_event, publish_marker
from tests.support.eventually import eventually
from tests.support.gateway import events_of, running_gateway, terminal
from tests.support.processes import BIN, Proc, process_env

pytestmark = pytest.mark.integration


async def test_a_submitted_distance_is_computed_and_streamed_to_a_websocket_subscriber(
    rabbitmq: Settings, worker: Proc
) -> None:
    async with running_gateway(rabbitmq) as gw:
        async with gw.ws() as ws:
            async with gw.http.post(f"{gw.url}/distance/?x=3&y=4") as resp:
                accepted = await resp.json()
                assert resp.status == 202, accepted
                assert resp.headers["Location"] == f"/tasks/{accepted['task_id']}"
            task_id = accepted["task_id"]
            assert accepted == {"task_id": task_id, "name": "calculate_distance",
                                "state": "queued", "status_url": f"/tasks/{task_id}",
                                "stream_url": f"/ws?task_id={task_id}"}
            await ws.send({"op": "subscribe", "task_ids": [task_id]})
            frames = await ws.receive_until(terminal(task_id))

        assert frames[0] == {"type": "subscribed", "task_ids": [task_id]}
        states = [f["state"] for f in events_of(frames, task_id)]
        assert "started" in states
        assert states.index("started") < states.index("succeeded")
        assert states[-1] == "succeeded"
        final = events_of(frames, task_id)[-1]
        assert final["result"] == 5.0
        assert final["name"] == "calculate_distance"
        assert final["ts"].endswith("Z")
        cursors = [int(f["cursor"]) for f in events_of(frames, task_id)]
        assert cursors == sorted(set(cursors))

        status, doc = await gw.task(task_id)
        assert status == 200
        assert doc["state"] == "succeeded"
        assert doc["result"] == 5.0
        assert doc["retries"] == 0
        assert {"submitted_at", "started_at", "finished_at"} <= doc.keys()


async def test_a_subscriber_arriving_after_the_task_finished_gets_the_terminal_event(
    rabbitmq: Settings, worker: Proc
) -> None:
    async with running_gateway(rabbitmq) as gw:
        task_id = await gw.submit("calculate_distance", args=[6, 8])
        await gw.wait_state(task_id, {"succeeded"})
        async with gw.ws(f"?task_id={task_id}") as ws:
            frames = await ws.receive_until(terminal(task_id), timeout=10)
            assert frames[0] == {"type": "subscribed", "task_ids": [task_id]}
            assert events_of(frames)[-1]["result"] == 10.0
            # Exactly one frame for the finished task, nothing replayed twice:
            # the subscription's replay was queued at once, before the pong.
            assert len(events_of(frames)) == 1
            assert await ws.drain() == []


async def test_a_queued_announcement_reaching_the_stream_after_its_task_finished_is_not_delivered(
    rabbitmq: Settings, worker: Proc
) -> None:
    # The gateway announces a task (batched) once RabbitMQ confirmed it; on a
    # loaded machine the worker's started and succeeded can reach the stream
    # first. Put that order on the stream for real: the announcement again,
    # after the task finished.
    settings = rabbitmq.model_copy(update={"event_buffer_size": 1})  # replays from the stream
    async with running_gateway(rabbitmq) as gw, gw.ws() as everything:
        await everything.send({"op": "subscribe", "all": True})
        await everything.receive()
        task_id = await gw.submit("calculate_distance", args=[3, 4])
        async with gw.ws(f"?task_id={task_id}") as watcher:
            watched = await watcher.receive_until(terminal(task_id))
            seen = await everything.receive_until(terminal(task_id))
            _, doc = await gw.task(task_id)
            # Another task's event in between: a replay from just after it has none
            # of the task's own events in its window, only the late announcement.
            spacer = TaskEvent(str(uuid.uuid4()), "sleep", TaskState.QUEUED, utc_now())
            await publish_event(rabbitmq, spacer)
            seen += await everything.receive_until(
                lambda f: f.get("task_id") == spacer.task_id)
            await publish_event(rabbitmq, TaskEvent(
                task_id, "calculate_distance", TaskState.QUEUED,
                datetime.fromisoformat(doc["submitted_at"]), queue=settings.task_queue))
            # Events arrive in stream order: once a later task is seen, so was the late one.
            later = await gw.submit("calculate_distance", args=[6, 8])
            seen += await everything.receive_until(terminal(later))
            # The gateway read the late announcement before ``later``'s end, so
            # had it sent the watcher a frame for it, that frame is before the pong.
            watched += await watcher.drain()
        since = min(int(f["cursor"]) for f in events_of(seen, task_id)) - 1
        async with gw.ws() as from_memory:
            await from_memory.send({"op": "subscribe", "all": True, "since": str(since)})
            replayed_from_memory = await from_memory.receive_until(terminal(later))
        status, after = await gw.task(task_id)

    since_spacer = int(events_of(seen, spacer.task_id)[0]["cursor"])
    async with running_gateway(settings) as other:
        async with other.ws() as from_stream:
            await from_stream.send({"op": "subscribe", "all": True, "since": str(since)})
            replayed_from_stream = await from_stream.receive_until(terminal(later))
        async with other.ws() as after_it:
            await after_it.send({"op": "subscribe", "all": True, "since": str(since_spacer)})
            replayed_after_it = await after_it.receive_until(terminal(later))
        _, other_doc = await other.task(task_id)

    assert events_of(replayed_after_it, task_id) == []
    for frames in (watched, seen, replayed_from_memory, replayed_from_stream):
        states = [f["state"] for f in events_of(frames, task_id)]
        assert states[-1] == "succeeded", states
        assert states.count("succeeded") == 1
        first_news = next(i for i, state in enumerate(states) if state != "queued")
        assert "queued" not in states[first_news:], states
    assert status == 200
    assert after["state"] == other_doc["state"] == "succeeded"
    assert after["result"] == other_doc["result"] == 5.0


@pytest.mark.parametrize("ring_size", [50_000, 2], ids=["from-memory", "from-the-stream"])
async def test_a_client_reconnecting_with_since_receives_every_missed_event_in_order_once(
    rabbitmq: Settings, worker: Proc, ring_size: int
) -> None:
    # With a ring of 2 events the replay cannot come from memory and is read
    # back from the RabbitMQ stream instead.
    settings = rabbitmq.model_copy(update={"event_buffer_size": ring_size})
    async with running_gateway(settings) as gw:
        async with gw.ws() as witness:  # stays connected throughout
            await witness.send({"op": "subscribe", "all": True})
            assert await witness.receive() == {"type": "subscribed", "all": True}

            async with gw.ws() as client:
                await client.send({"op": "subscribe", "all": True})
                await client.receive()
                first = await gw.submit("calculate_distance", args=[1, 1])
                seen = await client.receive_until(terminal(first))
            cursor = events_of(seen)[-1]["cursor"]

            # While the client is away, more work happens.
            missed_ids = [await gw.submit("calculate_distance", args=[i, i]) for i in (2, 3)]
            for task_id in missed_ids:
                await gw.wait_state(task_id, {"succeeded"})
            witnessed = await witness.receive_until(terminal(missed_ids[-1]))

            async with gw.ws() as client:
                await client.send({"op": "subscribe", "all": True, "since": cursor})
                assert await client.receive() == {"type": "subscribed", "all": True}
                replayed = await client.receive_until(terminal(missed_ids[-1]))
                # Anything either still gets (a replay sent twice, say) comes before
                # a marker put on the stream now: live events wait for the replay.
                marker = await publish_marker(settings)
                witnessed += await witness.receive_until(lambda f: f.get("task_id") == marker)
                replayed += await client.receive_until(lambda f: f.get("task_id") == marker)
            witnessed = [f for f in witnessed if f.get("task_id") != marker]
            replayed = [f for f in replayed if f.get("task_id") != marker]

    expected = [f for f in events_of(witnessed) if int(f["cursor"]) > int(cursor)]
    assert {f["task_id"] for f in expected} >= set(missed_ids)
    assert events_of(replayed) == expected
    cursors = [int(f["cursor"]) for f in events_of(replayed)]
    assert cursors == sorted(set(cursors))


async def test_a_subscription_by_name_only_receives_events_of_those_tasks(
    rabbitmq: Settings, worker: Proc
) -> None:
    async with running_gateway(rabbitmq) as gw, gw.ws() as ws:
        await ws.send({"op": "subscribe", "all": True, "names": ["sleep"]})
        await ws.receive()
        distance = await gw.submit("calculate_distance", args=[1, 2])
        nap = await gw.submit("sleep", args=[0.1])
        frames = await ws.receive_until(terminal(nap))
        await gw.wait_state(distance, {"succeeded"})
        # The gateway holds the distance's end: a frame for it would be before the pong.
        frames += await ws.drain()
    assert {f["task_id"] for f in events_of(frames)} == {nap}


async def test_a_restarted_gateway_process_still_delivers_the_terminal_state(
    rabbitmq: Settings, worker: Proc, unused_tcp_port_factory: Callable[[], int]
) -> None:
    port_factory = unused_tcp_port_factory
    env = process_env(rabbitmq)

    def start_gateway() -> tuple[Proc, str]:
        port = port_factory()
        proc = Proc("gateway", [str(BIN / "cargoctl"), "gateway", "--host", "127.0.0.1",
                                "--port", str(port)], env)
        return proc, f"http://127.0.0.1:{port}"

    async def wait_ready(http: aiohttp.ClientSession, url: str, proc: Proc) -> None:
        async def readyz() -> int:
            assert proc.alive(), proc.output()
            async with http.get(f"{url}/readyz") as resp:
                return resp.status

        await eventually(readyz, 60, lambda: f"the gateway ready:\n{proc.output()}",
                         until=lambda status: status == 200,
                         ignoring=(aiohttp.ClientConnectionError,))

    async with aiohttp.ClientSession() as http, StreamEvents(rabbitmq) as stream:
        first, url = start_gateway()
        try:
            await wait_ready(http, url, first)
            async with http.post(f"{url}/tasks/sleep", json={"args": [0.5]}) as resp:
                assert resp.status == 202
                task_id = (await resp.json())["task_id"]
            # The task finishes while no gateway runs at all.
            first.stop()
            await stream.until_state(task_id, {"succeeded"})
        finally:
            first.stop()

        second, url = start_gateway()
        try:
            await wait_ready(http, url, second)
            async with http.get(f"{url}/tasks/{task_id}") as resp:
                doc = await resp.json()
                assert resp.status == 200, doc
                assert doc["state"] == "succeeded"
                assert doc["result"] == 0.5
            async with http.ws_connect(f"{url.replace('http', 'ws')}/ws?task_id={task_id}") as ws:
                subscribed = await ws.receive_json(timeout=10)
                assert subscribed == {"type": "subscribed", "task_ids": [task_id]}
                event = await ws.receive_json(timeout=10)
                assert event["state"] == "succeeded"
                assert event["result"] == 0.5
        finally:
            second.stop()


async def test_progress_reported_by_a_task_reaches_subscribers_in_order(
    rabbitmq: Settings, worker: Proc
) -> None:
    async with running_gateway(rabbitmq) as gw:
        task_id = await gw.submit("sleep", args=[0.3], kwargs={"steps": 3})
        async with gw.ws(f"?task_id={task_id}") as ws:
            frames = await ws.receive_until(terminal(task_id))
    progress = [f["progress"] for f in events_of(frames) if f["state"] == "progress"]
    # A late subscription may start after the first progress events; those it
    # sees must be in order and end with the last step.
    assert progress, frames
    assert progress == sorted(progress, key=lambda p: p["done"])
    assert progress[-1] == {"done": 3, "total": 3}


async def delayed_exchange_publishes(settings: Settings) -> int:
    """How many messages RabbitMQ counted into Celery's delayed-delivery exchange."""
    async with ManagementClient(settings.management_api) as api:
        exchanges = await api.list_exchanges(settings.vhost)
    stats = next((e.get("message_stats") or {} for e in exchanges
                  if e["name"] == CELERY_DELAYED_EXCHANGE), {})
    return int(stats.get("publish_in", 0))


async def test_a_countdown_delays_the_task_through_native_delayed_delivery(
    rabbitmq: Settings, worker: Proc
) -> None:
    countdown = 2
    before = await delayed_exchange_publishes(rabbitmq)
    async with running_gateway(rabbitmq) as gw:
        task_id = await gw.submit("calculate_distance", args=[3, 4],
                                  options={"countdown": countdown})
        doc = await gw.wait_state(task_id, {"succeeded"})
    # The ``queued`` time is taken before the publish and the ``started`` time by
    # the worker: the task did not start before its countdown (a lower bound, so
    # however slow the machine is), and it did run after it.
    submitted = datetime.fromisoformat(doc["submitted_at"])
    started = datetime.fromisoformat(doc["started_at"])
    assert (started - submitted).total_seconds() >= countdown, doc
    assert doc["result"] == 5.0
    # The broker held it, in Celery's delay levels, not the worker (the
    # management API's counters lag: poll).
    await eventually(lambda: delayed_exchange_publishes(rabbitmq), 60,
                     f"the task counted into {CELERY_DELAYED_EXCHANGE}",
                     until=lambda publishes: publishes > before)


async def test_the_same_idempotency_key_gives_the_same_task_id(
    rabbitmq: Settings, worker: Proc
) -> None:
    async with running_gateway(rabbitmq) as gw:
        body = {"args": [3, 4], "options": {"idempotency_key": "order-42"}}
        first = await gw.submit("calculate_distance", **body)
        second = await gw.submit("calculate_distance", **body)
        other = await gw.submit("calculate_distance", args=[3, 4],
                                options={"idempotency_key": "order-43"})
    assert first == second
    assert other != first
