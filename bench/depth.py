"""Timing a drain by queue depth, so neither side pays for being measured.

A worker draining a pre-filled queue is timed from outside: a poller asks
RabbitMQ for the queue's ready count (a passive ``queue_declare``, one round trip
on its own connection) every few milliseconds. Nothing is added to the task, the
worker or its messages, so the method is the same for Cargo, bare Celery and
Dramatiq. The drain window runs from the last sample that still saw every
message ready to the first sample of the final run of empty ones; the tasks in
it are all of them. Its error is about one poll interval at each end (and the
last ``P`` tasks are counted at delivery, not completion: a few milliseconds).
CPU (the worker's process tree, RabbitMQ's ``beam.smp``) is read when the
poller first sees the depth drop and when it first sees the queue empty.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aio_pika
import aiormq

from bench.cpu import find_broker_process, tree_cpu_seconds

Sample = tuple[float, int]  # (time.time(), ready messages)


def drain_window(samples: Sequence[Sample], total: int) -> tuple[float, float]:
    """(start, end) of the drain of ``total`` messages seen in ``samples`` (in time order).

    start: the last sample before the depth first fell below ``total``; end: the
    first of the trailing samples at zero (a queue that emptied and filled again
    - a bridge republishing what it holds - has not finished draining).
    """
    first_drop = next((i for i, (_, depth) in enumerate(samples) if depth < total), None)
    if first_drop is None:
        raise ValueError("the queue never drained below its starting depth")
    if samples[-1][1] != 0:
        raise ValueError("the queue was not empty at the last sample")
    start = samples[max(first_drop - 1, 0)][0]
    end_index = len(samples) - 1
    while end_index > first_drop and samples[end_index - 1][1] == 0:
        end_index -= 1
    return start, samples[end_index][0]


def rate(tasks: int, start: float, end: float) -> float:
    """Tasks per second over a window (``inf`` for an empty window is a bug: raise)."""
    if end <= start:
        raise ValueError(f"an empty window ({start} .. {end})")
    return tasks / (end - start)


@dataclass
class DrainTiming:
    samples: list[Sample] = field(default_factory=list)
    # CPU seconds at the first drop and at the first empty sample: (worker tree, RabbitMQ)
    cpu_at_drop: tuple[float, float] | None = None
    cpu_at_empty: tuple[float, float] | None = None
    delivered_at_drop: int = 0  # messages already gone when the drop was seen

    def window(self, total: int) -> tuple[float, float]:
        return drain_window(self.samples, total)

    def cpu_per_task_ms(self, total: int) -> tuple[float | None, float | None]:
        """(worker, RabbitMQ) ms of CPU per task between the drop and the empty queue."""
        if self.cpu_at_drop is None or self.cpu_at_empty is None:
            return None, None
        tasks = total - self.delivered_at_drop
        if tasks <= 0:
            return None, None
        worker = 1000 * (self.cpu_at_empty[0] - self.cpu_at_drop[0]) / tasks
        rabbit = 1000 * (self.cpu_at_empty[1] - self.cpu_at_drop[1]) / tasks
        return worker, rabbit


async def consumers(url: str, queue: str) -> int:
    """How many consumers ``queue`` has now (passive declare: no stats delay); 0 while
    it does not exist yet."""
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return 0
        return declared.declaration_result.consumer_count or 0


async def watch_drain(url: str, queues: Sequence[str], total: int,
                      worker_pids: Callable[[], Sequence[int]],
                      timeout: float, poll: float = 0.01, settle: int = 5,
                      alive: Callable[[], bool] = lambda: True) -> DrainTiming:
    """Poll the ready count of ``queues`` (summed) until it stayed 0 for ``settle`` samples.

    Started before the worker (or bridge) is, so the first samples see all ``total``.
    ``worker_pids``: whose process trees' CPU to read (called at the drop, when they run).
    """
    timing = DrainTiming()
    broker = find_broker_process(url)

    def cpu() -> tuple[float, float]:
        workers = sum(tree_cpu_seconds(pid) or 0.0 for pid in worker_pids())
        return workers, (tree_cpu_seconds(broker.pid) or 0.0) if broker else 0.0

    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()
        deadline = time.monotonic() + timeout
        zeros = 0
        while zeros < settle:
            if time.monotonic() > deadline:
                last = timing.samples[-1][1] if timing.samples else "?"
                raise TimeoutError(f"{list(queues)} not drained within {timeout}s "
                                   f"(last depth {last})")
            if not alive():
                raise RuntimeError("the draining process exited")
            depth = 0
            for name in queues:
                declared = await channel.declare_queue(name, passive=True)
                depth += declared.declaration_result.message_count or 0
            timing.samples.append((time.time(), depth))
            if depth < total and timing.cpu_at_drop is None:
                timing.cpu_at_drop = cpu()
                timing.delivered_at_drop = total - depth
            if depth == 0 and timing.cpu_at_empty is None:
                timing.cpu_at_empty = cpu()
            zeros = zeros + 1 if depth == 0 else 0
            await asyncio.sleep(poll)
    finally:
        await connection.close()
    return timing
