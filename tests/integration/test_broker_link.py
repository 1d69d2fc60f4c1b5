"""Nothing a WebSocket client or a scraper does costs the gateway its broker link, and a
confirm that comes late is waited for rather than answered 503.

The gateway's one AMQP connection carries the publisher's confirm channel; anything
that makes RabbitMQ close that connection turns every submission in flight into an
error. "Not reopened" is checked as the very same connection object before and after.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import pytest

import gateway.health
from bench.proxy import BrokerProxy
from broker.events import CONTENT_TYPE, TaskEvent, TaskState, encode_batch, utc_now
from broker.settings import Settings
from broker.topology import EVENTS_EXCHANGE, event_routing_key
from gateway.keys import BROKER_KEY
from tests.support.events import StreamEvents
from tests.support.gateway import Gateway, running_gateway
from tests.support.processes import Proc

pytestmark = pytest.mark.integration


async def fill_stream(settings: Settings, batches: int, per_batch: int = 5) -> None:
    """History on the events stream, so a replay from "0" has a long way to go."""
    connection = await aio_pika.connect(settings.rabbitmq_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=True)
        for _ in range(batches):
            events = [TaskEvent(str(uuid.uuid4()), "sleep", TaskState.QUEUED, utc_now())
                      for _ in range(per_batch)]
            await exchange.publish(
                aio_pika.Message(encode_batch(events), content_type=CONTENT_TYPE),
                routing_key=event_routing_key(TaskState.QUEUED, "sleep"))


@asynccontextmanager
async def submitting_throughout(gw: Gateway) -> AsyncIterator[list[int]]:
    """Another client submitting one task after another while the block runs."""
    statuses: list[int] = []
    stop = asyncio.Event()

    async def submit_until_stopped() -> None:
        while not stop.is_set():
            async with gw.http.post(f"{gw.url}/distance/", params={"x": 3, "y": 4}) as resp:
                statuses.append(resp.status)
                await resp.read()

    submitter = asyncio.create_task(submit_until_stopped())
    try:
        yield statuses
    finally:
        stop.set()
        await asyncio.wait_for(submitter, 60)


async def test_replays_from_cursor_zero_while_events_flow_cost_no_submission_and_no_reconnect(
    rabbitmq: Settings, worker: Proc,
) -> None:
    await fill_stream(rabbitmq, batches=600)
    # A one-event ring: every "since" replay is read from the stream itself.
    settings = rabbitmq.model_copy(update={"event_buffer_size": 1})
    async with running_gateway(settings) as gw:
        link = gw.app[BROKER_KEY].connection
        assert link is not None
        async with submitting_throughout(gw) as statuses:
            for round_ in range(5):
                async with gw.ws() as ws:
                    await ws.send({"op": "subscribe", "all": True, "since": "0"})
                    assert (await ws.receive())["type"] == "subscribed"
                    if round_ % 2 == 0:
                        # Leave mid-replay: the stream consumer still holds deliveries.
                        await ws.receive_until(lambda f: f.get("type") == "event")
                    else:
                        # Stay until live events arrive: the replay ran to its end.
                        await ws.receive_until(
                            lambda f: f.get("name") == "calculate_distance", timeout=120)
                    await ws.send({"op": "ping"})
            # Submissions keep being answered after the last replay ended.
            answered = len(statuses)
            for _ in range(3):
                assert (await gw.submit_distance()) is not None
        assert gw.app[BROKER_KEY].connection is link
        assert not link.is_closed
    assert len(statuses) >= answered
    assert set(statuses) == {202}, statuses


async def test_scraping_metrics_in_a_loop_with_many_subscribers_costs_no_reconnect(
    rabbitmq: Settings, worker: Proc, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Scrapes that give up almost at once: their broker work is abandoned at every
    # stage of opening, using and closing a channel (what a busy event loop or a
    # slow broker does to the 2 s budget).
    budgets = (0.001, 0.002, 0.004, 0.008, 0.015)
    async with running_gateway(rabbitmq) as gw:
        link = gw.app[BROKER_KEY].connection
        assert link is not None
        clients = [gw.ws() for _ in range(50)]
        for client in clients:
            await client.__aenter__()
            await client.send({"op": "subscribe", "all": True})
        scrapes: list[int] = []
        try:
            async with submitting_throughout(gw) as statuses:
                for n in range(150):
                    monkeypatch.setattr(gateway.health, "DEPTH_TIMEOUT", budgets[n % 5])
                    async with gw.http.get(f"{gw.url}/metrics") as resp:
                        scrapes.append(resp.status)
                        await resp.read()
        finally:
            for client in clients:
                await client.__aexit__(None, None, None)
        assert gw.app[BROKER_KEY].connection is link
        assert not link.is_closed
    assert set(scrapes) == {200}
    assert statuses
    assert set(statuses) == {202}, statuses


@asynccontextmanager
async def gateway_behind(settings: Settings) -> AsyncIterator[tuple[Gateway, BrokerProxy]]:
    proxy = BrokerProxy("127.0.0.1", 5672)
    await proxy.start()
    url = settings.rabbitmq_url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
    assert url != settings.rabbitmq_url, "RABBITMQ_URL must name 127.0.0.1:5672"
    try:
        async with running_gateway(settings.model_copy(
                update={"rabbitmq_url": url, "publish_timeout": 0.5})) as gw:
            yield gw, proxy
    finally:
        proxy.thaw()
        await proxy.stop()


async def post(gw: Gateway, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with gw.http.post(f"{gw.url}/tasks/calculate_distance", json=body) as resp:
        return resp.status, await resp.json()


async def test_a_confirm_arriving_after_the_publish_timeout_is_a_202_not_a_503(
    rabbitmq: Settings, worker: Proc,
) -> None:
    async with gateway_behind(rabbitmq) as (gw, proxy), StreamEvents(rabbitmq) as stream:
        proxy.stall()
        answer = asyncio.create_task(post(gw, {"args": [6, 8]}))
        # Four times the publish timeout without a word from the broker.
        done, _ = await asyncio.wait({answer}, timeout=2.0)
        proxy.thaw()
        status, doc = await asyncio.wait_for(answer, 60)
        assert status == 202, (doc, "answered while stalled" if done else "answered late")
        events = await stream.until_state(doc["task_id"], {"succeeded"})
    assert [e.state for e in events].count(TaskState.STARTED) == 1


async def test_a_connection_lost_after_the_publish_was_sent_is_not_answered_503(
    rabbitmq: Settings,
) -> None:
    async with gateway_behind(rabbitmq) as (gw, proxy):
        proxy.stall()
        answer = asyncio.create_task(post(gw, {"args": [6, 8]}))
        await asyncio.sleep(1.0)  # written and waiting for its confirm
        await proxy.go_down()
        proxy.thaw()
        status, doc = await asyncio.wait_for(answer, 60)
    assert status == 504, doc
    assert doc["error"]["code"] == "publish_outcome_unknown"
    assert doc["error"]["details"]["task_id"]
