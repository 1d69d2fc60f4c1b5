"""Fan-out under load: many WebSocket subscribers, a burst of submissions, a broker reconnect.

Real RabbitMQ, a real Celery worker, a real gateway (aiohttp on a real port) and
real WebSocket clients.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aio_pika
import aiohttp
import pytest

from bench.proxy import BrokerProxy
from broker.events import CONTENT_TYPE, TaskEvent, TaskState, utc_now
from broker.settings import Settings
from broker.topology import EVENTS_EXCHANGE, event_routing_key
from gateway.events_reader import ACK_EVERY, PREFETCH
from tests.support.events import publish_marker
from tests.support.eventually import eventually
from tests.support.gateway import Gateway, running_gateway
from tests.support.processes import Proc

pytestmark = pytest.mark.integration

SUBSCRIBERS = 200
BURST = 200


async def collect(ws: aiohttp.ClientWebSocketResponse, wanted: set[str],
                  done_state: str) -> list[dict[str, Any]]:
    """Event frames of the ``wanted`` tasks until each of them reached ``done_state``."""
    frames, pending = [], set(wanted)
    async with asyncio.timeout(300):
        while pending:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, message
            frame = json.loads(message.data)
            if frame["type"] == "event" and frame["task_id"] in wanted:
                frames.append(frame)
                if frame["state"] == done_state:
                    pending.discard(frame["task_id"])
    return frames


class Burst:
    """The burst's task ids, known once every submission was answered."""

    def __init__(self) -> None:
        self.ids: set[str] | None = None


async def listen(ws: aiohttp.ClientWebSocketResponse, burst: Burst) -> list[dict[str, Any]]:
    """Every event frame, read from before the burst until each of its tasks succeeded
    (reading throughout, as a live client does)."""
    frames: list[dict[str, Any]] = []
    succeeded: set[str] = set()
    async with asyncio.timeout(300):
        while burst.ids is None or not burst.ids <= succeeded:
            try:
                message = await ws.receive(timeout=0.5)
            except TimeoutError:
                continue
            assert message.type == aiohttp.WSMsgType.TEXT, message
            frame = json.loads(message.data)
            if frame["type"] == "event":
                frames.append(frame)
                if frame["state"] == "succeeded":
                    succeeded.add(frame["task_id"])
    return frames


async def test_every_all_subscriber_gets_every_event_of_a_burst_and_every_submission_is_202(
    rabbitmq: Settings, worker: Proc
) -> None:
    burst = Burst()
    async with running_gateway(rabbitmq) as gw, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0)) as http:
        ws_url = gw.url.replace("http", "ws", 1) + "/ws"
        clients = [await http.ws_connect(ws_url) for _ in range(SUBSCRIBERS)]
        for ws in clients:
            await ws.send_json({"op": "subscribe", "all": True})
            assert (await ws.receive_json())["type"] == "subscribed"
        listening = [asyncio.create_task(listen(ws, burst)) for ws in clients]
        key = uuid.uuid4().hex

        async def submit(n: int) -> tuple[int, Any]:
            async with http.post(f"{gw.url}/tasks/calculate_distance", json={"args": [n, 1]},
                                 headers={"Idempotency-Key": f"{key}-{n}"}) as resp:
                return resp.status, await resp.json()

        answers = await asyncio.gather(*(submit(n) for n in range(BURST)))
        statuses = [status for status, _ in answers]
        assert statuses == [202] * BURST, [doc for status, doc in answers if status != 202][:3]
        burst.ids = ids = {doc["task_id"] for _, doc in answers}
        seen = [[f for f in frames if f["task_id"] in ids]
                for frames in await asyncio.gather(*listening)]
        for ws in clients:
            await ws.close()

    first = [(f["task_id"], f["state"], f["cursor"]) for f in seen[0]]
    assert {(task_id, state) for task_id, state, _ in first} >= {
        (task_id, state) for task_id in ids for state in ("started", "succeeded")}
    cursors = [int(cursor) for _, _, cursor in first]
    assert cursors == sorted(set(cursors))  # in stream order, none twice
    for frames in seen[1:]:  # every subscriber got exactly what the first one got
        assert [(f["task_id"], f["state"], f["cursor"]) for f in frames] == first


async def _until_not_ready(gw: Gateway, timeout: float = 60) -> None:
    """Until the gateway noticed the broker is gone (``/readyz`` 503)."""
    async def readyz() -> int:
        async with gw.http.get(f"{gw.url}/readyz") as resp:
            return resp.status

    await eventually(readyz, timeout, "/readyz answering 503", until=lambda status: status == 503)


async def publish_started(connection: aio_pika.abc.AbstractConnection,
                          task_ids: list[str]) -> None:
    """One ``started`` event per stream message, as a worker publishes them."""
    channel = await connection.channel()
    exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=True)
    for task_id in task_ids:
        event = TaskEvent(task_id, "calculate_distance", TaskState.STARTED, utc_now())
        await exchange.publish(aio_pika.Message(event.to_json(), content_type=CONTENT_TYPE),
                               routing_key=event_routing_key(event.state, event.name))
    await channel.close()


async def test_with_batched_acks_a_gateway_resumes_after_a_broker_reconnect_missing_nothing(
    rabbitmq: Settings
) -> None:
    # Not a multiple of the ack batch: some deliveries are unacknowledged when the
    # connection drops; and more than the prefetch window after it, so a consumer
    # whose acks stopped flowing would stall.
    before = [f"acks-before-{uuid.uuid4()}" for _ in range(ACK_EVERY + 7)]
    while_down = [f"acks-down-{uuid.uuid4()}" for _ in range(11)]
    after = [f"acks-after-{uuid.uuid4()}" for _ in range(PREFETCH + ACK_EVERY)]
    ours = set(before) | set(while_down) | set(after)
    proxy = BrokerProxy("127.0.0.1", 5672)
    await proxy.start()
    url = rabbitmq.rabbitmq_url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
    assert url != rabbitmq.rabbitmq_url, "RABBITMQ_URL must name 127.0.0.1:5672"
    publisher = await aio_pika.connect(rabbitmq.rabbitmq_url, timeout=10)
    try:
        async with running_gateway(rabbitmq.model_copy(update={"rabbitmq_url": url})) as gw, \
                gw.ws() as everything:
            await everything.send({"op": "subscribe", "all": True})
            await everything.receive()
            assert everything.conn is not None
            await publish_started(publisher, before)
            got = await collect(everything.conn, set(before), "started")
            await proxy.go_down()

            await _until_not_ready(gw)
            await publish_started(publisher, while_down)
            await proxy.come_back()
            await gw.wait_ready(timeout=60)
            await publish_started(publisher, after)
            got += await collect(everything.conn, set(while_down) | set(after), "started")
            # a duplicate (a delivery the gateway did not ack) is before a marker sent now
            marker = await publish_marker(rabbitmq)
            got += await everything.receive_until(lambda f: f.get("task_id") == marker)
    finally:
        await publisher.close()
        await proxy.stop()
    ids = [f["task_id"] for f in got if f.get("type") == "event" and f["task_id"] in ours]
    assert ids == before + while_down + after  # each once, in stream order
