"""Poison messages cannot stop a worker: real RabbitMQ, one real Celery worker for the module.

Each raw message below (the red team's cases of issue 11 and a few more) is
published straight to the task queue with aio-pika, as any producer could. A
worker that let one reach Celery stopped ("Unrecoverable error") and so did
the next one it was redelivered to, until RabbitMQ dead-lettered it as
``delivery_limit``. Now each must end in ``<queue>.XQ`` once, as ``poison``,
taken by the same worker process, which then runs a good task.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest

from broker.celery_protocol import encode_task
from broker.management import ManagementClient
from broker.settings import Settings
from broker.topology import (
    DEAD_LETTER_EXCHANGE,
    DEATH_HEADER,
    ERROR_MESSAGE_HEADER,
    REASON_HEADER,
    TASKS_EXCHANGE,
    WATCH_DELIVERY_LIMIT,
    dead_letter_queue_name,
    dead_letter_watch_queue_name,
)
from tests.support.deadletters import free_port, metric_value, scrape
from tests.support.events import StreamEvents
from tests.support.eventually import eventually
from tests.support.gateway import running_gateway
from tests.support.processes import BIN, Proc, process_env, start_worker
from tests.support.rabbit import private_vhost
from tests.support.workers import gateway_publisher, submit, wait_queue_empty

pytestmark = pytest.mark.integration

HUGE_INT = "9" * 5000  # past Python's 4300-digit int/str conversion limit


@dataclass
class Fleet:
    settings: Settings
    worker: Proc
    metrics_url: str
    published: list[str] = field(default_factory=list)


def assert_same_worker_serving(fleet: Fleet) -> None:
    """The worker's main process started for the module never exited (a prefork
    worker whose consumer fails stops as a whole: nothing restarts it here)."""
    assert fleet.worker.alive(), f"the worker stopped:\n{fleet.worker.output()[-3000:]}"
    assert "Unrecoverable error" not in fleet.worker.output()


@pytest.fixture(scope="module")
def fleet(rabbitmq: Settings) -> Iterator[Fleet]:
    with private_vhost("cargo-test-poison") as settings:
        port = free_port()
        worker = start_worker(settings, name="poison", concurrency=1,
                              CARGO_WORKER_METRICS_PORT=str(port))
        try:
            yield Fleet(settings, worker, f"http://127.0.0.1:{port}/metrics")
        finally:
            worker.stop()


def good_headers(task_id: str, **changes: Any) -> dict[str, Any]:
    headers = dict(encode_task(task_id, "calculate_distance", [3, 4]).headers)
    headers.update(changes)
    return headers


GOOD_BODY = b'[[3, 4], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'


@dataclass(frozen=True)
class Raw:
    """One raw message: what is wrong with it, and its parts."""

    case: str
    headers: dict[str, Any] = field(default_factory=dict)
    body: bytes = GOOD_BODY
    content_type: str | None = "application/json"
    content_encoding: str | None = "utf-8"
    # headers replaced wholesale (e.g. no valid 'id'); None: good headers + `headers`
    raw_headers: dict[str, Any] | None = None


CASES = [
    Raw("timelimit of strings", {"timelimit": ["x", "y"]}),
    Raw("timelimit of three numbers", {"timelimit": [1, 2, 3]}),
    Raw("retries a word", {"retries": "abc"}),
    Raw("retries 5000 digits as text", {"retries": HUGE_INT}),
    Raw("retries negative", {"retries": -1}),
    Raw("eta a number", {"eta": 12345}),
    Raw("eta not a date", {"eta": "next tuesday"}),
    Raw("expires a list", {"expires": ["x"]}),
    Raw("argsrepr a list", {"argsrepr": ["x"]}),
    Raw("root_id a number", {"root_id": 7}),
    Raw("parent_id a table", {"parent_id": {"a": 1}}),
    Raw("group a number", {"group": 5}),
    Raw("origin a list", {"origin": [1]}),
    Raw("ignore_result a word", {"ignore_result": "yes"}),
    Raw("id a number", raw_headers={"id": 42, "task": "calculate_distance"}),
    Raw("argument of 5000 digits", body=f"[[{HUGE_INT}, 4], {{}}, {{}}]".encode()),
    Raw("body of 100,000 [", body=b"[" * 100_000),
    Raw("arguments nested 500 deep", body=b"[[" + b"[" * 500 + b"]" * 500 + b"], {}, {}]"),
    Raw("embed callbacks a word", body=b'[[3, 4], {}, {"callbacks": "x"}]'),
    Raw("gzip compression over junk", {"compression": "application/x-gzip"},
        body=b"\x00junk that is not gzip"),
    Raw("unknown compression", {"compression": "application/x-rot13"}, body=GOOD_BODY),
    Raw("unknown content type", content_type="application/x-unknown"),
    Raw("no content type", content_type=None),
    Raw("content encoding utf-16", content_encoding="utf-16"),
]


async def publish(settings: Settings, raw: Raw, message_id: str,
                  exchange: str = TASKS_EXCHANGE, routing_key: str | None = None) -> None:
    """Publish a raw message with publisher confirms (default exchange when exchange='')."""
    headers = raw.raw_headers if raw.raw_headers is not None else good_headers(
        message_id, **raw.headers)
    connection = await aio_pika.connect(settings.rabbitmq_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        target = (channel.default_exchange if exchange == ""
                  else await channel.get_exchange(exchange))
        await target.publish(
            aio_pika.Message(raw.body, headers=headers, content_type=raw.content_type,
                             content_encoding=raw.content_encoding, message_id=message_id,
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=routing_key if routing_key is not None else settings.task_queue)


async def dlq_copies(settings: Settings, message_id: str) -> list[dict[str, Any]]:
    async with ManagementClient(settings.management_api) as api:
        messages = await api.get_messages(
            settings.vhost, dead_letter_queue_name(settings.task_queue), 1000)
    return [m for m in messages if m["properties"].get("message_id") == message_id]


async def wait_dlq_copy(fleet: Fleet, message_id: str, timeout: float = 60) -> dict[str, Any]:
    async def copies() -> list[dict[str, Any]]:
        found = await dlq_copies(fleet.settings, message_id)
        if not found:
            assert_same_worker_serving(fleet)
        return found

    return (await eventually(copies, timeout, f"{message_id} dead-lettered"))[0]


@pytest.mark.parametrize("raw", CASES, ids=[c.case for c in CASES])
async def test_a_malformed_message_is_dead_lettered_once_as_poison_and_the_worker_keeps_serving(
    fleet: Fleet, raw: Raw,
) -> None:
    message_id = f"poison-{uuid.uuid4()}"
    fleet.published.append(message_id)
    await publish(fleet.settings, raw, message_id)
    first = await wait_dlq_copy(fleet, message_id)
    headers = first["properties"]["headers"]
    assert headers[REASON_HEADER] == "poison"
    assert headers[ERROR_MESSAGE_HEADER]  # the problem is named
    # Dead-lettered by the worker, not by RabbitMQ's delivery limit (no x-death);
    # that no delivery was a redelivery is proven for all cases at once below.
    assert DEATH_HEADER not in headers
    assert_same_worker_serving(fleet)
    await wait_queue_empty(fleet.settings, fleet.settings.task_queue)
    assert len(await dlq_copies(fleet.settings, message_id)) == 1


async def test_after_every_poison_message_the_same_worker_process_runs_a_good_task(
    fleet: Fleet,
) -> None:
    async with StreamEvents(fleet.settings) as events, \
            gateway_publisher(fleet.settings) as publisher:
        task_id = await submit(publisher, fleet.settings, "calculate_distance", [3, 4])
        history = await events.until_state(task_id, timeout=60)
    assert history[-1].state.value == "succeeded"
    assert history[-1].result == 5.0
    assert_same_worker_serving(fleet)


async def test_the_task_queue_never_redelivered_a_poison_message(fleet: Fleet) -> None:
    # The management API's counters lag by its statistics interval: wait until
    # they show every delivery so far, then none may have been a redelivery.
    assert fleet.published, "run with the poison cases"
    async with ManagementClient(fleet.settings.management_api) as api:
        async def message_stats() -> dict[str, Any]:
            info = await api.get_queue(fleet.settings.vhost, fleet.settings.task_queue)
            return dict(info.get("message_stats") or {})

        stats = await eventually(
            message_stats, 60, f"{len(fleet.published)} deliveries counted",
            until=lambda stats: int(stats.get("deliver", 0)) >= len(fleet.published))
    assert int(stats.get("deliver", 0)) >= len(fleet.published), stats
    assert int(stats.get("redeliver", 0)) == 0, stats


def test_the_worker_counted_each_poison_message_once(fleet: Fleet) -> None:
    assert fleet.published, "run with the poison cases"
    text = scrape(fleet.metrics_url)
    assert metric_value(text, "cargo_dead_lettered_total", queue=fleet.settings.task_queue,
                        reason="poison") == len(fleet.published)


# The dead-letter watcher (<queue>.XQ.watch)

WATCH_CASES = [
    Raw("body of 100,000 [", raw_headers={}, body=b"[" * 100_000),
    Raw("gzip compression over junk", raw_headers={"compression": "application/x-gzip"},
        body=b"\x00junk"),
    Raw("argument of 5000 digits", raw_headers={"task": "calculate_distance"},
        body=f"[[{HUGE_INT}], {{}}, {{}}]".encode()),
    Raw("x-death a word", raw_headers={DEATH_HEADER: "garbage", "x-first-death-reason": 5}),
    Raw("x-death of junk tables", raw_headers={DEATH_HEADER: [{"queue": 5, "time": "x",
                                                               "reason": ["delivery_limit"]}]}),
    Raw("reason header a number", raw_headers={REASON_HEADER: 7}),
    Raw("not JSON at all", raw_headers={}, body=b"\xff\xfe\x00", content_type=None),
]


async def test_the_watch_queue_has_a_delivery_limit(fleet: Fleet) -> None:
    async with ManagementClient(fleet.settings.management_api) as api:
        info = await api.get_queue(fleet.settings.vhost,
                                   dead_letter_watch_queue_name(fleet.settings.task_queue))
    assert info["arguments"]["x-delivery-limit"] == WATCH_DELIVERY_LIMIT


async def test_notices_the_watcher_cannot_read_are_dropped_and_the_worker_survives(
    fleet: Fleet,
) -> None:
    watch = dead_letter_watch_queue_name(fleet.settings.task_queue)
    for raw in WATCH_CASES:
        await publish(fleet.settings, raw, f"notice-{uuid.uuid4()}", exchange="",
                      routing_key=watch)
    await wait_queue_empty(fleet.settings, watch)
    assert_same_worker_serving(fleet)
    # kombu itself fails the gzip-over-junk notice; the watcher drops it and counts it
    dropped = metric_value(scrape(fleet.metrics_url), "cargo_dead_letter_notices_dropped_total")
    assert dropped is not None
    assert dropped >= 1
    async with StreamEvents(fleet.settings) as events, \
            gateway_publisher(fleet.settings) as publisher:
        task_id = await submit(publisher, fleet.settings, "calculate_distance", [6, 8])
        history = await events.until_state(task_id, timeout=60)
    assert history[-1].state.value == "succeeded"
    assert_same_worker_serving(fleet)


async def test_dead_letters_routed_through_the_dlx_drain_from_the_watch_queue_and_are_listed(
    fleet: Fleet,
) -> None:
    ids = []
    for raw in WATCH_CASES:
        message_id = f"dlx-{uuid.uuid4()}"
        ids.append(message_id)
        await publish(fleet.settings, raw, message_id, exchange=DEAD_LETTER_EXCHANGE,
                      routing_key=dead_letter_queue_name(fleet.settings.task_queue))
    await wait_queue_empty(fleet.settings,
                           dead_letter_watch_queue_name(fleet.settings.task_queue))
    assert_same_worker_serving(fleet)
    async with running_gateway(fleet.settings) as gw:
        async with gw.http.get(f"{gw.url}/dead-letters", params={"limit": "1000"}) as resp:
            status, doc = resp.status, await resp.json()
    assert status == 200, doc
    listed = {item["task_id"]: item for item in doc["items"]}
    assert set(ids) <= set(listed)
    assert fleet.published, "run with the poison cases"
    assert set(fleet.published) <= set(listed)
    for message_id in fleet.published:
        assert listed[message_id]["reason"] == "poison"
        assert listed[message_id]["error"]["message"]  # the problem the worker found
    # A body that cannot be read is shown as such: no arguments, and why.
    deep = [listed[i] for i in [*fleet.published, *ids]
            if "nested too deep" in listed[i].get("undecodable", "")]
    assert len(deep) == 2  # the task-queue case and the one routed through the DLX
    assert all(item["args"] is None and item["kwargs"] is None for item in deep)
    # A message whose headers were wrong but whose body is fine shows its arguments.
    assert any(listed[i]["args"] == [3, 4] for i in fleet.published)


async def test_cargoctl_dead_letters_list_prints_every_poison_message(fleet: Fleet) -> None:
    async with running_gateway(fleet.settings) as gw:
        result = await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "cargoctl"), "dead-letters", "list", "--all", "--reason", "poison",
             "--output", "json", "--gateway", gw.url],
            env=process_env(fleet.settings), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)["items"]
    assert fleet.published, "run with the poison cases"
    assert set(fleet.published) <= {item["task_id"] for item in items}
