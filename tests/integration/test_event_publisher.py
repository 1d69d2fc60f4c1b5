"""The workers' event publisher against the real broker: pipelined confirms, nothing forgotten.

The publisher is synchronous (it runs in Celery's processes), so the tests call
it from a thread while the event loop runs the broker proxy they cut.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from bench.proxy import BrokerProxy
from broker.declare import declare_topology
from broker.events import CONTENT_TYPE, TaskEvent, TaskState, utc_now
from broker.settings import Settings
from broker.topology import EVENTS_EXCHANGE, build_topology, event_routing_key
from tests.support.events import StreamEvents
from tests.support.rabbit import private_vhost
from workers.event_publisher import ConfirmFailed, EventPublisher, PendingEvent

pytestmark = pytest.mark.integration


def pending(task_id: str, state: TaskState) -> PendingEvent:
    event = TaskEvent(task_id=task_id, name="calculate_distance", state=state, ts=utc_now())
    return PendingEvent(event.to_json(), EVENTS_EXCHANGE,
                        event_routing_key(state, event.name), CONTENT_TYPE)


def states_of(events: StreamEvents, task_id: str) -> list[str]:
    return [e.state.value for e in events.events if e.task_id == task_id]


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.netloc.rsplit('@', 1)[0]}@127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@pytest.fixture(scope="module")
def vhost(rabbitmq: Settings) -> Iterator[Settings]:
    with private_vhost("cargo-test-events-pub") as settings:
        async def declare() -> None:
            import aio_pika

            connection = await aio_pika.connect(settings.rabbitmq_url, timeout=10)
            async with connection:
                await declare_topology(await connection.channel(), build_topology(settings))

        asyncio.run(declare())
        yield settings


@pytest.fixture
async def proxy(vhost: Settings) -> AsyncIterator[BrokerProxy]:
    parts = urlsplit(vhost.rabbitmq_url)
    proxy = BrokerProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_events_left_in_flight_are_confirmed_by_the_next_waited_event_in_order(
    vhost: Settings,
) -> None:
    publisher = EventPublisher(vhost.rabbitmq_url, timeout=5)
    try:
        async with StreamEvents(vhost, offset="next") as events:
            await asyncio.to_thread(publisher.publish, pending("t-1", TaskState.STARTED),
                                    wait=False)
            await asyncio.to_thread(publisher.publish, pending("t-1", TaskState.PROGRESS),
                                    wait=False)
            await asyncio.to_thread(publisher.publish, pending("t-1", TaskState.SUCCEEDED),
                                    wait=True)
            assert publisher.in_flight == 0  # the wait covered the two before it
            await events.until_state("t-1", {"succeeded"}, timeout=10)
            assert states_of(events, "t-1") == ["started", "progress", "succeeded"]
    finally:
        publisher.close()


async def test_events_in_flight_when_the_connection_drops_are_published_again(
    vhost: Settings, proxy: BrokerProxy,
) -> None:
    publisher = EventPublisher(through(vhost.rabbitmq_url, proxy.port), timeout=2)
    try:
        async with StreamEvents(vhost, offset="next") as events:
            await asyncio.to_thread(publisher.publish, pending("t-0", TaskState.SUCCEEDED),
                                    wait=True)  # connected
            proxy.blackhole()  # the started event reaches the broker; its confirm never returns
            await asyncio.to_thread(publisher.publish, pending("t-2", TaskState.STARTED),
                                    wait=False)
            assert publisher.in_flight == 1
            await proxy.go_down()
            await proxy.come_back()
            await asyncio.to_thread(publisher.publish, pending("t-2", TaskState.SUCCEEDED),
                                    wait=True)
            assert publisher.in_flight == 0
            await events.until_state("t-2", {"succeeded"}, timeout=10)
            states = states_of(events, "t-2")
            # at least once: the first started may be there too, then the republished one
            assert states[-2:] == ["started", "succeeded"]
            assert set(states) == {"started", "succeeded"}
    finally:
        publisher.close()


async def test_a_broker_that_never_confirms_fails_the_wait_instead_of_hanging(
    vhost: Settings, proxy: BrokerProxy,
) -> None:
    publisher = EventPublisher(through(vhost.rabbitmq_url, proxy.port), timeout=0.5,
                               attempts=2)
    try:
        await asyncio.to_thread(publisher.publish, pending("t-3", TaskState.STARTED), wait=True)
        proxy.blackhole()
        with pytest.raises(ConfirmFailed, match="no confirm"):
            await asyncio.to_thread(publisher.publish, pending("t-3", TaskState.SUCCEEDED),
                                    wait=True)
        assert publisher.in_flight == 1  # kept: a later reconnect publishes it again
    finally:
        publisher.close()
