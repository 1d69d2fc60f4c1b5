"""Dramatiq producers run on Cargo's Celery workers: the real ``dramatiq`` library as the
producer, the real bridge process, a real Celery worker, the real broker.

One vhost for the module (small limits, a worker that also offers the failing
tasks of ``tests.support.chaos``, and the bridge started before any Dramatiq
producer); the declaration-order test has a vhost of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import dramatiq
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from bench.proxy import BrokerProxy
from broker.events import TaskEvent
from broker.management import ManagementClient
from broker.settings import Settings, load_settings
from broker.topology import REASON_HEADER, dead_letter_queue_name
from tests.support.bridge import bridge_heartbeat_path, start_bridge
from tests.support.deadletters import chaos_vhost, free_port, limited_env, metric_value, scrape
from tests.support.events import StreamEvents
from tests.support.eventually import eventually
from tests.support.gateway import events_of, running_gateway, terminal
from tests.support.processes import BIN, Proc, process_env, start_worker
from tests.support.rabbit import private_vhost, url_with_vhost

pytestmark = pytest.mark.integration

QUEUE = "default"


def _never_called(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("Cargo's workers run the task, not this process")


@dataclass
class Producer:
    """A Dramatiq producer: RabbitmqBroker and actors named like Cargo's tasks."""

    broker: RabbitmqBroker
    actors: dict[str, dramatiq.Actor[Any, Any]] = field(default_factory=dict)

    def actor(self, name: str) -> dramatiq.Actor[Any, Any]:
        if name not in self.actors:
            decorate = dramatiq.actor(broker=self.broker, actor_name=name, queue_name=QUEUE)
            self.actors[name] = decorate(_never_called)
        return self.actors[name]

    def dead_letter_count(self) -> int:
        """``<queue>.XQ`` as Dramatiq's own ``get_queue_message_counts`` counts it."""
        return int(self.broker.get_queue_message_counts(QUEUE)[2])


def producer_for(settings: Settings, **options: Any) -> Producer:
    return Producer(RabbitmqBroker(url=settings.rabbitmq_url, confirm_delivery=True, **options))


@dataclass
class Stack:
    settings: Settings
    worker: Proc
    bridge: Proc
    heartbeat: str
    metrics_port: int
    producer: Producer

    def start_bridge(self) -> None:
        self.bridge = start_bridge(self.settings, "bridge", env=self.bridge_env())

    def bridge_env(self) -> dict[str, str]:
        return {**limited_env(), "CARGO_BRIDGE_HEARTBEAT_FILE": self.heartbeat,
                "CARGO_BRIDGE_METRICS_PORT": str(self.metrics_port)}


@pytest.fixture(scope="module")
def stack(rabbitmq: Settings) -> Iterator[Stack]:
    with chaos_vhost("cargo-test-bridge") as (settings, worker):
        stack = Stack(settings, worker, bridge=None,  # type: ignore[arg-type]
                      heartbeat=bridge_heartbeat_path("bridge"), metrics_port=free_port(),
                      producer=producer_for(settings))
        stack.start_bridge()  # Cargo first: the producer declares its queues afterwards
        try:
            yield stack
        finally:
            stack.bridge.stop()
            stack.producer.broker.close()


def states(events: list[TaskEvent]) -> list[str]:
    """The worker's states (the bridge's ``queued`` may arrive before or after ``started``)."""
    return [e.state.value for e in events if e.state.value != "queued"]


async def dead_letter(settings: Settings, task_id: str, timeout: float = 60) -> dict[str, Any]:
    """The message of ``task_id`` in ``default.XQ`` (left there), by Celery id or body."""
    async def message_of_task() -> dict[str, Any] | None:
        async with ManagementClient(settings.management_api) as api:
            messages = await api.get_messages(settings.vhost, dead_letter_queue_name(QUEUE), 500)
        for message in messages:
            headers = message["properties"].get("headers") or {}
            if headers.get("id") == task_id or task_id in str(message.get("payload")):
                return dict(message)
        return None

    message = await eventually(message_of_task, timeout,
                               f"{task_id} in {dead_letter_queue_name(QUEUE)}")
    return message


async def queue_depth(settings: Settings, queue: str) -> int:
    async with ManagementClient(settings.management_api) as api:
        info = await api.get_queue(settings.vhost, queue)
    return int(info.get("messages_ready") or 0) + int(info.get("messages_unacknowledged") or 0)


async def bridge_health(settings: Settings, heartbeat: str, *args: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "cargoctl"), "bridge", "health", "--file", heartbeat, *args,
        env=process_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return await proc.wait()


# what runs, under which id


async def test_a_dramatiq_send_runs_on_a_cargo_worker_under_its_message_id(stack: Stack) -> None:
    async with running_gateway(stack.settings) as gateway:
        message = stack.producer.actor("calculate_distance").send(3, 4)
        async with gateway.ws(f"?task_id={message.message_id}") as ws:
            frames = await ws.receive_until(terminal(message.message_id), timeout=90)
        last = events_of(frames, message.message_id)[-1]
        assert (last["state"], last["name"], last["result"]) == (
            "succeeded", "calculate_distance", 5.0)
        doc = await gateway.wait_state(message.message_id, {"succeeded"})
        assert (doc["task_id"], doc["name"], doc["result"]) == (
            message.message_id, "calculate_distance", 5.0)


async def test_a_delayed_send_starts_no_earlier_than_its_eta(stack: Stack) -> None:
    async with StreamEvents(stack.settings) as events:
        message = stack.producer.actor("calculate_distance").send_with_options(
            args=(6, 8), delay=3000)
        history = await events.until_state(message.message_id, timeout=90)
    assert message.queue_name == f"{QUEUE}.DQ"  # Dramatiq put it on its delay queue
    assert states(history) == ["started", "succeeded"]
    assert history[-1].result == 10.0
    started = next(e for e in history if e.state.value == "started")
    assert started.ts.timestamp() * 1000 >= message.options["eta"]  # a lower bound only


# failures end in Dramatiq's <queue>.XQ


async def test_a_failing_task_uses_the_messages_max_retries_then_lands_in_dramatiqs_xq(
    stack: Stack,
) -> None:
    async with StreamEvents(stack.settings) as events:
        message = stack.producer.actor("always_fail").send_with_options(
            args=("kaput",), max_retries=1)  # the task's own budget is 2
        history = await events.until_state(message.message_id, timeout=120)
    assert states(history) == ["started", "failed", "retrying", "started", "failed",
                               "dead_lettered"]
    assert history[-1].reason == "failed"
    letter = await dead_letter(stack.settings, message.message_id)
    assert letter["properties"]["headers"][REASON_HEADER] == "failed"
    assert stack.producer.dead_letter_count() >= 1


async def test_a_task_past_the_messages_time_limit_is_dead_lettered_with_time_limit(
    stack: Stack,
) -> None:
    async with StreamEvents(stack.settings) as events:
        message = stack.producer.actor("sleep").send_with_options(args=(60,), time_limit=1000)
        history = await events.until_state(message.message_id, timeout=120)
    assert states(history) == ["started", "failed", "dead_lettered"]
    assert history[-1].reason == "time_limit"
    letter = await dead_letter(stack.settings, message.message_id)
    assert letter["properties"]["headers"][REASON_HEADER] == "time_limit"


async def test_a_message_older_than_its_max_age_is_revoked_unrun(stack: Stack) -> None:
    async with StreamEvents(stack.settings) as events:
        message = stack.producer.actor("calculate_distance").send_with_options(
            args=(1, 1), max_age=1)
        history = await events.until_state(message.message_id, timeout=90)
    assert states(history) == ["revoked"]
    assert history[-1].reason == "expired"


# poison


async def test_an_actor_with_no_cargo_task_is_dead_lettered_as_poison_once(stack: Stack) -> None:
    async with StreamEvents(stack.settings) as events:
        message = stack.producer.actor("send_newsletter").send("everyone")
        history = await events.until_state(message.message_id, timeout=90)
    assert states(history) == ["dead_lettered"]
    assert history[-1].reason == "poison"
    assert history[-1].error is not None
    assert "no Cargo task named 'send_newsletter'" in history[-1].error["message"]
    letter = await dead_letter(stack.settings, message.message_id)
    assert letter["properties"]["headers"][REASON_HEADER] == "poison"
    assert letter["payload"] == message.encode().decode()  # the message, unchanged
    # never looping: nothing left to deliver again, and one copy in <queue>.XQ
    assert await queue_depth(stack.settings, QUEUE) == 0
    async with ManagementClient(stack.settings.management_api) as api:
        copies = [m for m in await api.get_messages(
            stack.settings.vhost, dead_letter_queue_name(QUEUE), 500)
            if message.message_id in m["payload"]]
    assert len(copies) == 1


async def test_bytes_that_are_no_dramatiq_message_are_dead_lettered_as_poison(
    stack: Stack,
) -> None:
    body = b"\x80\x04this is no message"
    marker = f"garbage-{time.time_ns()}"
    connection = await aio_pika.connect(stack.settings.rabbitmq_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(body, message_id=marker), routing_key=QUEUE)

    async def letter_of_marker() -> dict[str, Any] | None:
        async with ManagementClient(stack.settings.management_api) as api:
            return next((m for m in await api.get_messages(
                stack.settings.vhost, dead_letter_queue_name(QUEUE), 500)
                if m["properties"].get("message_id") == marker), None)

    letter = await eventually(letter_of_marker, 60, "the garbage message in default.XQ")
    assert letter["properties"]["headers"][REASON_HEADER] == "poison"
    assert "not JSON" in letter["properties"]["headers"]["x-cargo-error-message"]


# restarts, reconnects, health, metrics


async def test_a_bridge_killed_while_bridging_loses_nothing(stack: Stack) -> None:
    actor = stack.producer.actor("calculate_distance")
    async with StreamEvents(stack.settings, offset="next") as events:
        # The producer keeps sending while the bridge bridges; the bridge is
        # killed as soon as it has acknowledged its first message.
        sending = asyncio.create_task(asyncio.to_thread(
            lambda: [actor.send(i, 0).message_id for i in range(1000)]))
        await events.wait(lambda seen: any(e.state.value == "queued" for e in seen),
                          timeout=60, what="the bridge acknowledging a message")
        stack.bridge.kill(signal.SIGKILL)
        stack.bridge.popen.wait(10)
        sent = await sending
        sent += [actor.send(i, 1).message_id for i in range(50)]  # surely after the kill
        # the heartbeat stopped with the process: liveness fails once it is a second old
        await eventually(
            lambda: bridge_health(stack.settings, stack.heartbeat, "--liveness", "--max-age", "1"),
            60, "the bridge's liveness probe failing", until=lambda code: code == 1)
        await asyncio.to_thread(stack.start_bridge)

        def all_succeeded(_: list[TaskEvent]) -> bool:
            done = {e.task_id for e in events.events if e.state.value == "succeeded"}
            return done.issuperset(sent)

        await events.wait(all_succeeded, timeout=170, what="every sent message succeeding")
        assert not [e for e in events.events
                    if e.task_id in set(sent) and e.state.value == "dead_lettered"]

    # the management API's counts lag a few seconds
    await eventually(lambda: queue_depth(stack.settings, QUEUE), 60, "the Dramatiq queue drained",
                     until=lambda depth: depth == 0)
    assert await bridge_health(stack.settings, stack.heartbeat, "--readiness") == 0


async def test_the_bridge_reconnects_by_itself_when_the_broker_comes_back(stack: Stack) -> None:
    await asyncio.to_thread(stack.bridge.stop)  # the bridge behind a proxy is the only one
    target = urlsplit(stack.settings.rabbitmq_url)
    proxy = BrokerProxy(target.hostname or "127.0.0.1", target.port or 5672)
    await proxy.start()
    heartbeat = bridge_heartbeat_path("proxied-bridge")
    proxied_url = url_with_vhost(f"amqp://{target.username}:{target.password}"
                                 f"@127.0.0.1:{proxy.port}/", stack.settings.vhost)
    env = {**limited_env(), "CARGO_BRIDGE_HEARTBEAT_FILE": heartbeat,
           "CARGO_BRIDGE_HEARTBEAT_INTERVAL": "0.5", "CARGO_RECONNECT_INTERVAL": "0.5"}
    proxied_settings = load_settings({"RABBITMQ_URL": proxied_url, **(
        {"CARGO_MANAGEMENT_URL": stack.settings.management_url}
        if stack.settings.management_url else {})})
    bridge = start_bridge(proxied_settings, "proxied-bridge", wait=False, env=env)
    try:
        async def health_is(code: int, what: str) -> None:
            await eventually(lambda: bridge_health(stack.settings, heartbeat, "--readiness"), 60,
                             what, until=lambda exit_code: exit_code == code)

        await health_is(0, "the proxied bridge ready")
        await proxy.go_down()
        await health_is(1, "readiness failing while the broker is gone")
        assert await bridge_health(stack.settings, heartbeat, "--liveness") == 0
        async with StreamEvents(stack.settings) as events:
            message = stack.producer.actor("calculate_distance").send(5, 12)
            await proxy.come_back()
            history = await events.until_state(message.message_id, timeout=120)
        assert states(history) == ["started", "succeeded"]
        assert history[-1].result == 13.0
        await health_is(0, "readiness back after the reconnect")
    finally:
        await asyncio.to_thread(bridge.stop)
        await proxy.stop()
        await asyncio.to_thread(stack.start_bridge)


async def test_the_bridge_counts_messages_by_outcome_and_times_their_translation(
    stack: Stack,
) -> None:
    url = f"http://127.0.0.1:{stack.metrics_port}/metrics"
    labels = {"queue": QUEUE, "outcome": "bridged"}
    before = metric_value(await asyncio.to_thread(scrape, url),
                          "cargo_bridge_messages_total", **labels) or 0.0
    async with StreamEvents(stack.settings) as events:
        message = stack.producer.actor("calculate_distance").send(1, 0)
        await events.until_state(message.message_id, timeout=90)
        poison = stack.producer.actor("not_a_cargo_task").send()
        await events.until_state(poison.message_id, timeout=90)
    text = await asyncio.to_thread(scrape, url)
    assert (metric_value(text, "cargo_bridge_messages_total", **labels) or 0.0) >= before + 1
    assert (metric_value(text, "cargo_bridge_messages_total", queue=QUEUE,
                         outcome="poison") or 0.0) >= 1
    assert (metric_value(text, "cargo_bridge_translation_seconds_count", queue=QUEUE)
            or 0.0) >= 1
    assert metric_value(text, "cargo_bridge_connected") == 1.0


# declaration order


def test_a_dramatiq_producer_that_declared_its_queues_before_cargo_existed_works(
    rabbitmq: Settings,
) -> None:
    with private_vhost("cargo-test-bridge-order") as settings:
        # Dramatiq first, with priorities: it declares default, default.DQ and default.XQ.
        producer = producer_for(settings, max_priority=5)
        try:
            early = producer.actor("calculate_distance").send(8, 6)
            worker = start_worker(settings, "bridge-order-worker")
            bridge = start_bridge(settings, "bridge-order",
                                  env={"CARGO_BRIDGE_MAX_PRIORITY": "5"})
            try:
                asyncio.run(early_and_later_messages_succeed(settings, producer,
                                                             early.message_id))
                assert producer.broker.get_queue_message_counts(QUEUE) == (0, 0, 0)
            finally:
                bridge.stop()
                worker.stop()
        finally:
            with contextlib.suppress(Exception):
                producer.broker.close()


async def early_and_later_messages_succeed(settings: Settings, producer: Producer,
                                           early_id: str) -> None:
    async with StreamEvents(settings) as events:
        history = await events.until_state(early_id, timeout=90)
        assert states(history) == ["started", "succeeded"]
        # and the producer's own redeclaration still agrees with the bridge's
        later = producer.actor("calculate_distance").send(0, 2)
        history = await events.until_state(later.message_id, timeout=90)
        assert states(history) == ["started", "succeeded"]
