"""An experiment: CPU per confirmed publish of one task message, by publish path.

No HTTP: C coroutines in one process publish the same Celery message to a
quorum queue and await each confirm, as the gateway's handlers do. Reports the
publishing process's CPU time per confirmed publish (``time.process_time``),
which moves far less than a rate on a busy machine, for each path in turn,
interleaved over rounds::

    python -m bench.experiments.publish_cost --seconds 5 --rounds 3

Paths: ``aio-pika`` (the ceiling's: ``Exchange.publish`` of a fresh
``Message``), ``publisher`` (the gateway's :class:`broker.publisher.Publisher`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import DeliveryMode

from bench.submit import QUEUE_MAX_LENGTH
from bench.vhost import private_vhost
from broker.celery_protocol import CONTENT_ENCODING, CONTENT_TYPE, encode_task
from broker.connection import BrokerConnection
from broker.declare import declare_topology
from broker.publisher import Publisher
from broker.settings import Settings, load_settings
from broker.topology import TASKS_EXCHANGE, build_topology

PublishOnce = Callable[[], Awaitable[object]]
Close = Callable[[], Awaitable[None]]


async def run_path(publish: PublishOnce, concurrency: int, seconds: float) -> tuple[int, float]:
    """(confirmed publishes, CPU seconds) over ``seconds`` of C concurrent publishers."""
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await publish()
            count += 1

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count, time.process_time() - cpu


async def run_n(publish: PublishOnce, n: int, concurrency: int) -> int:
    """Exactly ``n`` confirmed publishes from C concurrent publishers; returns ``n``."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await publish()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n


async def aio_pika_path(settings: Settings, queue: str) -> tuple[PublishOnce, Close]:
    connection = await aio_pika.connect(settings.rabbitmq_url)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    exchange = aio_pika.Exchange(channel, TASKS_EXCHANGE, passive=True)

    async def publish() -> object:
        task_id = str(uuid.uuid4())
        message = encode_task(task_id, "calculate_distance", [3.0, 4.0], {})
        return await exchange.publish(
            aio_pika.Message(body=message.body, headers=message.headers,
                             content_type=CONTENT_TYPE, content_encoding=CONTENT_ENCODING,
                             delivery_mode=DeliveryMode.PERSISTENT, correlation_id=task_id,
                             message_id=task_id),
            routing_key=queue, mandatory=True, timeout=10)

    return publish, connection.close


async def publisher_path(settings: Settings, queue: str) -> tuple[PublishOnce, Close]:
    connection = BrokerConnection(settings, build_topology(settings), name="bench-publish-cost")
    stack = contextlib.AsyncExitStack()  # closed by the caller, through the returned Close
    await stack.enter_async_context(connection)
    await connection.wait_ready(10)
    publisher = Publisher(connection, 10.0)

    async def publish() -> object:
        message = encode_task(str(uuid.uuid4()), "calculate_distance", [3.0, 4.0], {})
        return await publisher.publish_task(message, queue)

    return publish, stack.aclose


PATHS = {"aio-pika": aio_pika_path, "publisher": publisher_path}


async def main(args: argparse.Namespace) -> None:
    with private_vhost("cargo-bench") as vhost_settings:
        settings = load_settings({"RABBITMQ_URL": vhost_settings.rabbitmq_url,
                                  "CARGO_QUEUE_MAX_LENGTH": str(QUEUE_MAX_LENGTH)})
        topology = build_topology(settings)
        connection = await aio_pika.connect(settings.rabbitmq_url)
        async with connection:
            await declare_topology(await connection.channel(), topology)
        queue = topology.default_queue.name
        per_path: dict[str, list[float]] = {name: [] for name in args.paths}
        for round_ in range(args.rounds):
            for name in args.paths:
                publish, close = await PATHS[name](settings, queue)
                await run_path(publish, args.concurrency, 1.0)  # warm-up
                count, cpu = await run_path(publish, args.concurrency, args.seconds)
                await close()
                per_path[name].append(cpu / count * 1e6)
                print(f"round {round_ + 1} {name:>10}: {count / args.seconds:8,.0f}/s "
                      f"{cpu / count * 1e6:6.1f} µs CPU per publish", flush=True)
        for name, costs in per_path.items():
            print(f"median {name:>10}: {statistics.median(costs):6.1f} µs CPU per publish")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--paths", nargs="+", choices=sorted(PATHS), default=list(PATHS))
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    ns = parser.parse_args()
    if ns.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(main(ns))
