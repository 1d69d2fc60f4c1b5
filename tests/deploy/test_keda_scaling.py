"""Each pool's rendered ScaledObject against the real RabbitMQ: its trigger points at the queue
its workers consume.

The chart is rendered (external broker, the private vhost of this test), the topology is
declared from the rendered ConfigMap's settings and the pool's env exactly as the workers
declare it, N messages are published to the queue the pool's trigger names (no consumer;
the other pools' queues hold messages of their own, which must not count), and the queue is read
through the same management API request KEDA's rabbitmq scaler makes with protocol http
(GET <host>/api/queues/<vhost>/<queue>, counting `messages`: ready + unacknowledged). KEDA's
QueueLength rule then gives the replicas: ceil(messages / value) within min..max, and zero
at or below activationValue when minReplicaCount is 0. This checks the rule's target; the
HPA's tolerance and stabilisation windows only delay reaching it.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.error
import urllib.request
from base64 import b64encode
from typing import Any
from urllib.parse import quote_plus, urlsplit

import aio_pika
import pytest

from broker.declare import declare_topology
from broker.settings import Settings, load_settings
from broker.topology import TASKS_EXCHANGE, build_topology
from tests.deploy.chart import find, render
from tests.support.rabbit import private_vhost

WAIT_SECONDS = 90  # the management API refreshes queue figures every few seconds


def keda_queue_url(host: str, vhost_name: str, queue_name: str) -> str:
    """KEDA's rabbitmq scaler (getQueueInfoViaHTTP): the vhost from vhostName, escaped with
    Go's url.QueryEscape, the queue likewise, under <host>/api/queues."""
    parts = urlsplit(host)
    # Without vhostName KEDA takes the host's last path segment; the chart always sets it.
    vhost = "/" + quote_plus(vhost_name, safe="") if vhost_name else "/" + parts.path.split("/")[-1]
    if vhost in ("", "/", "//"):
        vhost = "/%2F"
    base = f"{parts.scheme}://{parts.hostname}:{parts.port}"
    return f"{base}/api/queues{vhost}/{quote_plus(queue_name, safe='')}"


def get_queue_like_keda(host: str, meta: dict[str, str]) -> dict[str, Any]:
    parts = urlsplit(host)
    request = urllib.request.Request(keda_queue_url(host, meta["vhostName"], meta["queueName"]))
    credentials = f"{parts.username}:{parts.password}".encode()
    request.add_header("Authorization", "Basic " + b64encode(credentials).decode())
    with urllib.request.urlopen(request, timeout=10) as resp:
        info: dict[str, Any] = json.load(resp)
    return info


def keda_replicas(messages: int, spec: dict[str, Any]) -> int:
    """KEDA QueueLength: AverageValue target `value` per replica, activation, min/max."""
    meta = spec["triggers"][0]["metadata"]
    value, activation = float(meta["value"]), float(meta["activationValue"])
    low, high = int(spec["minReplicaCount"]), int(spec["maxReplicaCount"])
    if low == 0 and messages <= activation:
        return 0  # not active: KEDA scales the Deployment to zero
    return min(high, max(low, 1, math.ceil(messages / value)))


def read_queue(host: str, meta: dict[str, str]) -> dict[str, Any]:
    try:
        return get_queue_like_keda(host, meta)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # a queue just declared may not be listed yet
            return {}
        raise


def wait_for_messages(host: str, meta: dict[str, str], expected: int) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    info = read_queue(host, meta)
    # A queue's figures arrive with its first stats emission, not all at once: wait for
    # the count and the consumer figure both.
    while ((info.get("messages") != expected or "consumers" not in info)
           and time.monotonic() < deadline):
        time.sleep(0.5)
        info = read_queue(host, meta)
    shown = info.get("messages")
    assert shown == expected, f"the queue shows {shown} messages, not {expected}"
    return info


async def publish(settings: Settings, queue: str, count: int) -> None:
    connection = await aio_pika.connect_robust(settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(TASKS_EXCHANGE)
        for i in range(count):
            await exchange.publish(aio_pika.Message(body=f'{{"n": {i}}}'.encode()),
                                   routing_key=queue)


async def declare(settings: Settings, task_queues: list[str]) -> None:
    connection = await aio_pika.connect_robust(settings.rabbitmq_url)
    async with connection:
        await declare_topology(await connection.channel(),
                               build_topology(settings, task_queues=task_queues))


# (scenario, pool) -> [(messages in the pool's queue, expected replicas), ...]
CASES = {
    # defaults: value 20, activation 0, 1..20 workers
    ("default", "default"): [(0, 1), (1, 1), (20, 1), (21, 2), (45, 3), (400, 20), (430, 20)],
    # ci/scale-to-zero-values.yaml: value 10, activation 2, 0..5 workers
    ("scale-to-zero", "default"): [(0, 0), (2, 0), (3, 1), (10, 1), (25, 3), (50, 5), (80, 5)],
    # ci/two-pools-values.yaml, the reports pool: its own value 5, activation 0, 1..3 workers
    ("two-pools", "reports"): [(0, 1), (1, 1), (5, 1), (6, 2), (11, 3), (15, 3), (40, 3)],
}
# Messages left in the other pools' queues while a pool's trigger is read: they must not
# count for it.
OTHER_POOLS_MESSAGES = 7


def pool_of(objects: list[dict[str, Any]], kind: str, pool: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind
                and o["metadata"]["labels"].get("cargo.io/pool") == pool]
    return found


@pytest.mark.integration
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("scenario", "pool"), sorted(CASES), ids=lambda v: str(v))
def test_keda_scales_each_pool_on_the_queue_its_workers_consume(scenario: str, pool: str) -> None:
    steps = CASES[(scenario, pool)]
    with private_vhost(prefix="cargo-keda") as settings:
        host = settings.management_api
        objects = render("--set", "rabbitmq.mode=external",
                         "--set", "rabbitmq.external.existingSecret=cargo-rabbitmq",
                         "--set", f"rabbitmq.vhost={settings.vhost}", scenario=scenario)
        spec = pool_of(objects, "ScaledObject", pool)["spec"]
        (trigger,) = spec["triggers"]
        meta = trigger["metadata"]
        assert (meta["protocol"], meta["mode"], meta["vhostName"]) == (
            "http", "QueueLength", settings.vhost)
        # The pool's workers' settings: the rendered ConfigMap, then the pool's own env (it
        # wins over the ConfigMap in a pod), in this vhost.
        config = find(objects, "ConfigMap", "-config")["data"]
        container = pool_of(objects, "Deployment", pool)["spec"]["template"]["spec"][
            "containers"][0]
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        workers = load_settings({**config, **env, "RABBITMQ_URL": settings.rabbitmq_url,
                                 "CARGO_MANAGEMENT_URL": host})
        assert workers.worker_queue_names == (meta["queueName"],)
        # Every pool's queues, declared as their workers declare them.
        queues = [t["metadata"]["queueName"] for o in objects if o["kind"] == "ScaledObject"
                  for t in o["spec"]["triggers"]]
        topology = build_topology(workers, task_queues=queues)
        assert meta["queueName"] in {q.name for q in topology.task_queues}
        asyncio.run(declare(workers, queues))
        others = [q for q in queues if q != meta["queueName"]]
        for other in others:
            asyncio.run(publish(workers, other, OTHER_POOLS_MESSAGES))

        published, seen = 0, []
        for total, expected in steps:
            asyncio.run(publish(workers, meta["queueName"], total - published))
            published = total
            info = wait_for_messages(host, meta, total)
            assert info["consumers"] == 0
            assert info["messages"] == info["messages_ready"] + info["messages_unacknowledged"]
            replicas = keda_replicas(info["messages"], spec)
            seen.append((total, replicas))
            assert replicas == expected, f"{total} messages: {replicas} replicas, not {expected}"
        print(f"{scenario}/{pool}: (messages, replicas) = {seen}; other pools' queues {others}")
        for other in others:  # they were there all along, and did not count
            assert wait_for_messages(host, {**meta, "queueName": other},
                                     OTHER_POOLS_MESSAGES)["messages"] == OTHER_POOLS_MESSAGES

        # A message being worked on (delivered, not acknowledged) still counts: protocol http.
        if published:
            asyncio.run(hold_one_unacked(workers, meta, host, published, spec))


async def hold_one_unacked(settings: Settings, meta: dict[str, str], host: str, total: int,
                           spec: dict[str, Any]) -> None:
    connection = await aio_pika.connect_robust(settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(meta["queueName"], ensure=False)
        message = await queue.get(no_ack=False)
        assert message is not None
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + WAIT_SECONDS
        info = await loop.run_in_executor(None, get_queue_like_keda, host, meta)
        while info.get("messages_unacknowledged") != 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            info = await loop.run_in_executor(None, get_queue_like_keda, host, meta)
        assert info["messages_unacknowledged"] == 1, info
        assert info["messages_ready"] == total - 1
        assert info["messages"] == total
        assert keda_replicas(info["messages"], spec) == keda_replicas(total, spec)
        await message.nack(requeue=True)
