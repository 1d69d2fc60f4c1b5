"""How fast a Celery worker drains trivial tasks: Cargo's worker against plain Celery.

Explains the bridge benchmark's gap (``bench/bridge.py``): the executor on the
bridged side is a Celery prefork worker, so its own rate bounds the bridged
rate. Both sides get ``--messages`` pre-published ``calculate_distance``-like
tasks (``math.hypot``) and ``--concurrency`` prefork children, one round each,
on one private vhost:

- **cargo**: ``cargoctl worker`` (quorum queue, late acks, prefetch 1,
  lifecycle events on the stream, memory guard, metrics); completion times are
  the ``succeeded`` events' timestamps;
- **plain-celery**: a bare Celery app (classic queue, late acks, prefetch 1,
  confirms, no events, no result backend); completion times are written by the
  task to a file. ``--pools`` runs it once per Celery pool (``prefork``,
  ``threads``), each with ``--concurrency`` slots;
- **dramatiq** (with ``--dramatiq``): Dramatiq's own worker
  (``--processes C --threads 1``) on the same trivial actor, as in
  ``bench/bridge.py``, so the ratio to Dramatiq comes from the same run.

Throughput is ``(N - 1) / (last completion - first completion)``; CPU is the
worker's whole process tree and RabbitMQ's (``beam.smp``) over the drain,
per task. One run, not a benchmark with goals: a measurement to read.

    .venv/bin/python -m bench.experiments.worker_drain --messages 3000 --concurrency 2
    .venv/bin/python -m bench.experiments.worker_drain --pools prefork threads --dramatiq
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import celery
import psutil

from bench.bridge import PEER_QUEUE, done_times, producer, start_dramatiq_worker, wait_until
from bench.procs import outlive_no_parent
from broker.settings import Settings
from tests.support.events import StreamEvents
from tests.support.processes import BIN, start_worker
from tests.support.rabbit import private_vhost
from workers.app import create_app

PLAIN_QUEUE = "plain"


def plain_app(url: str) -> celery.Celery:
    """The plain Celery peer; ``celery -A bench.experiments.worker_drain:plain`` loads it."""
    app = celery.Celery("plain", broker=url)
    app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1,
                    task_serializer="json", accept_content=["json"],
                    broker_transport_options={"confirm_publish": True},
                    task_default_queue=PLAIN_QUEUE, worker_hijack_root_logger=False)
    done_dir = os.environ.get("BENCH_DONE_DIR", "")
    if os.environ.get("EXP_QTYPE") == "quorum":
        import kombu
        app.conf.task_queues = [kombu.Queue(os.environ["EXP_Q"], routing_key=os.environ["EXP_Q"],
                                            queue_arguments={"x-queue-type": "quorum"})]

    @app.task(name="calculate_distance")
    def calculate_distance(x: float, y: float) -> float:
        with open(Path(done_dir) / f"{os.getpid()}.done", "a") as out:
            out.write(f"{time.time()}\n")
        return math.hypot(x, y)

    return app


def __getattr__(name: str) -> celery.Celery:  # the celery CLI's -A target, built on demand
    if name == "plain":
        return plain_app(os.environ["BENCH_URL"])
    raise AttributeError(name)


def tree_cpu(pid: int) -> float:
    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def rabbit_cpu() -> float:
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "beam.smp":
            times = proc.cpu_times()
            return float(times.user + times.system)
    return 0.0


def report(side: str, times: list[float], worker_cpu: float, broker_cpu: float, n: int) -> None:
    rate = (n - 1) / (times[-1] - times[0])
    print(f"{side:22s} {rate:7.0f} tasks/s   worker CPU {1000 * worker_cpu / n:5.2f} ms/task "
          f"(incl. start-up)   RabbitMQ CPU {1000 * broker_cpu / n:5.2f} ms/task", flush=True)


async def cargo_side(settings: Settings, n: int, concurrency: int) -> None:
    # A first worker declares the topology, then stops: the tasks wait in the queue.
    (await asyncio.to_thread(start_worker, settings, "drain-declare", concurrency)).stop()
    app = create_app(settings)
    async with StreamEvents(settings, offset="next") as events:
        with app.connection_for_write() as connection:
            ids = {app.send_task("calculate_distance", args=(i, 1), connection=connection).id
                   for i in range(n)}
        broker_before = rabbit_cpu()
        worker = await asyncio.to_thread(start_worker, settings, "drain", concurrency)
        try:
            while True:
                done = {e.task_id: e.ts.timestamp() for e in events.events
                        if e.state.value == "succeeded" and e.task_id in ids}
                if len(done) >= n:
                    break
                await asyncio.sleep(0.1)
            report("cargo", sorted(done.values()), tree_cpu(worker.pid),
                   rabbit_cpu() - broker_before, n)
        finally:
            await asyncio.to_thread(worker.stop)


def plain_side(settings: Settings, n: int, concurrency: int, pool: str) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
        app = plain_app(settings.rabbitmq_url)
        with app.connection_for_write() as connection:
            for i in range(n):
                app.send_task("calculate_distance", args=(i, 1), connection=connection)
        env = dict(os.environ, BENCH_URL=settings.rabbitmq_url, BENCH_DONE_DIR=tmp,
                   PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        broker_before = rabbit_cpu()
        worker = subprocess.Popen(
            [str(BIN / "celery"), "-A", "bench.experiments.worker_drain:plain", "worker",
             "-c", str(concurrency), "-P", pool, "-Q", PLAIN_QUEUE, "-l", "warning",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=outlive_no_parent())
        try:
            def times() -> list[float]:
                found: list[float] = []
                for path in Path(tmp).glob("*.done"):
                    found += [float(line) for line in path.read_text().split()]
                return sorted(found)

            deadline = time.monotonic() + 600
            while len(times()) < n:
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the plain Celery worker did not drain its queue")
                time.sleep(0.2)
            report(f"plain-celery {pool}", times()[:n], tree_cpu(worker.pid),
                   rabbit_cpu() - broker_before, n)
        finally:
            worker.terminate()
            worker.wait(30)


async def dramatiq_side(settings: Settings, n: int, concurrency: int) -> None:
    broker, actor = producer(settings, PEER_QUEUE)
    with tempfile.TemporaryDirectory(prefix="bench-drain-dramatiq-") as tmp:
        directory = Path(tmp)
        for i in range(n):
            actor.send(i, 1)
        broker_before = rabbit_cpu()
        worker = start_dramatiq_worker(settings, concurrency, directory)
        try:
            await wait_until(lambda: len(done_times(directory)) >= n, 600,
                             "dramatiq draining its queue")
            report("dramatiq", done_times(directory)[:n], tree_cpu(worker.pid),
                   rabbit_cpu() - broker_before, n)
        finally:
            await asyncio.to_thread(worker.stop)
            broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--pools", nargs="+", default=["prefork"], choices=["prefork", "threads"],
                        help="the plain Celery worker's pools, one drain each")
    parser.add_argument("--dramatiq", action="store_true",
                        help="also drain with Dramatiq's own worker")
    args = parser.parse_args()
    with private_vhost("cargo-bench-drain") as settings:
        asyncio.run(cargo_side(settings, args.messages, args.concurrency))
        for pool in args.pools:
            plain_side(settings, args.messages, args.concurrency, pool)
        if args.dramatiq:
            asyncio.run(dramatiq_side(settings, args.messages, args.concurrency))
    sys.exit(0)


if __name__ == "__main__":
    main()
