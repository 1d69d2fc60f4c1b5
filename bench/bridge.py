"""Bridged Dramatiq throughput and added latency, against Dramatiq's own worker, in one run.

Both sides get the same Dramatiq producer (``RabbitmqBroker``, ``actor.send``),
the same trivial actor (``calculate_distance(x, y)``: ``math.hypot``) and the
same concurrency ``C``, on one private vhost of the local broker:

- **dramatiq**: Dramatiq's own worker (``dramatiq … --processes C --threads 1``)
  consumes the producer's queue and runs the actor (``bench/peers/dramatiq_peer.py``);
- **bridged**: ``cargoctl bridge`` (the real bridge process) translates the
  same messages into Celery tasks and a Cargo Celery worker
  (``--concurrency C``, prefork) runs ``calculate_distance``.

Each round, per side:

1. **throughput**: ``--messages`` messages are sent first (the consumers are
   stopped), then the consumers start; throughput is ``(N - 1) / (last
   completion - first completion)``, so start-up is not counted. For the
   bridged side the completion is the worker's ``succeeded`` event; the
   bridge's own rate (first to last ``queued`` announcement) is printed too.
   The events are read back from the stream only once both queues are empty,
   so the benchmark's own reading of ~3 events per message does not compete
   with the bridge and the worker for the CPU during the drain (the Dramatiq
   side's completions are a line appended to a file).
2. **latency**: with the consumers idle, ``--probes`` messages are sent one at
   a time, each after the previous one completed; latency is completion minus
   the moment ``send`` returned. The bridged p50 minus Dramatiq's p50 is the
   latency the bridge (and Celery) add.

Sides alternate (dramatiq first in odd rounds, bridged first in even ones);
the summary is the median over rounds. Results go to
``bench/results/bridge-<UTC time>.json``.

    .venv/bin/python -m bench.bridge --messages 3000 --concurrency 2 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import dramatiq
import psutil
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from broker.events import TaskEvent
from broker.settings import Settings
from tests.support.bridge import start_bridge
from tests.support.events import StreamEvents
from tests.support.processes import BIN, ROOT, Proc, process_env, start_worker
from tests.support.rabbit import private_vhost

BRIDGED_QUEUE = "default"
PEER_QUEUE = "dramatiq_peer"
RESULTS = Path(__file__).resolve().parent / "results"


def _never_called(x: float, y: float) -> float:
    raise AssertionError("the consumers run the actor, not the producer")


@dataclass
class SideResult:
    side: str
    round: int
    messages: int
    throughput: float  # completions per second
    bridge_rate: float | None  # bridged only: translations per second
    latency_p50_ms: float
    latency_p95_ms: float
    latency_max_ms: float


def producer(settings: Settings, queue: str) -> tuple[RabbitmqBroker, dramatiq.Actor[Any, Any]]:
    broker = RabbitmqBroker(url=settings.rabbitmq_url)
    decorate = dramatiq.actor(broker=broker, actor_name="calculate_distance", queue_name=queue)
    return broker, decorate(_never_called)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout}s")
        await asyncio.sleep(0.05)


# Dramatiq's own worker


def done_times(directory: Path) -> list[float]:
    times: list[float] = []
    for path in directory.glob("*.done"):
        times += [float(line) for line in path.read_text().split()]
    return sorted(times)


def start_dramatiq_worker(settings: Settings, concurrency: int, directory: Path) -> Proc:
    env = process_env(settings, BENCH_DRAMATIQ_URL=settings.rabbitmq_url,
                      BENCH_DRAMATIQ_QUEUE=PEER_QUEUE, BENCH_DRAMATIQ_DONE_DIR=str(directory),
                      PYTHONPATH=str(ROOT))
    return Proc("bench-dramatiq-worker", [
        str(BIN / "dramatiq"), "bench.peers.dramatiq_peer:setup", "--processes",
        str(concurrency), "--threads", "1", "--queues", PEER_QUEUE], env)


async def run_dramatiq(settings: Settings, round_no: int, messages: int, concurrency: int,
                       probes: int) -> SideResult:
    broker, actor = producer(settings, PEER_QUEUE)
    with tempfile.TemporaryDirectory(prefix="bench-dramatiq-") as tmp:
        directory = Path(tmp)
        for i in range(messages):
            actor.send(i, 1)
        worker = start_dramatiq_worker(settings, concurrency, directory)
        try:
            await wait_until(lambda: len(done_times(directory)) >= messages, 600,
                             "dramatiq draining its queue")
            times = done_times(directory)[:messages]
            throughput = (messages - 1) / (times[-1] - times[0])
            latencies = []
            for i in range(probes):
                before = len(done_times(directory))
                actor.send(i, 2)
                sent = time.time()
                await wait_until(lambda b=before: len(done_times(directory)) > b,  # type: ignore[misc]
                                 60, "a dramatiq probe")
                latencies.append((done_times(directory)[-1] - sent) * 1000)
        finally:
            await asyncio.to_thread(worker.stop)
            broker.close()
    return SideResult("dramatiq", round_no, messages, throughput, None,
                      statistics.median(latencies), percentile(latencies, 0.95),
                      max(latencies))


# The bridge and a Cargo worker


def first_of(events: list[TaskEvent], ids: set[str], state: str) -> list[float]:
    seen: dict[str, float] = {}
    for event in events:
        if event.task_id in ids and event.state.value == state and event.task_id not in seen:
            seen[event.task_id] = event.ts.timestamp()
    return sorted(seen.values())


async def queues_emptied(settings: Settings, queues: list[str], timeout: float) -> None:
    """Wait until none of ``queues`` holds a ready message (checked twice in a row:
    the bridge may be between taking a message and publishing its task)."""
    connection = await aio_pika.connect(settings.rabbitmq_url, timeout=10)
    try:
        channel = await connection.channel()
        deadline = time.monotonic() + timeout
        empty_in_a_row = 0
        while empty_in_a_row < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{queues} not emptied within {timeout}s")
            await asyncio.sleep(0.1)
            counts = [(await channel.declare_queue(name, passive=True))
                      .declaration_result.message_count for name in queues]
            empty_in_a_row = empty_in_a_row + 1 if not any(counts) else 0
    finally:
        await connection.close()


async def run_bridged(settings: Settings, round_no: int, messages: int, concurrency: int,
                      probes: int) -> SideResult:
    broker, actor = producer(settings, BRIDGED_QUEUE)
    worker = await asyncio.to_thread(start_worker, settings, f"bench-bridge-worker-{round_no}",
                                     concurrency)
    bridge: Proc | None = None
    try:
        # A stream offset by time has one-second granularity: start a second early.
        since = datetime.now(UTC) - timedelta(seconds=1)
        ids = {actor.send(i, 1).message_id for i in range(messages)}
        bridge = await asyncio.to_thread(start_bridge, settings, f"bench-bridge-{round_no}",
                                         env={"CARGO_BRIDGE_METRICS_PORT": "0"})
        await queues_emptied(settings, [BRIDGED_QUEUE, settings.task_queue], 900)
        async with StreamEvents(settings, offset=since) as events:

            def all_done(ids: set[str] = ids) -> bool:
                return len(first_of(events.events, ids, "succeeded")) >= len(ids)

            await wait_until(all_done, 120, "the bridged messages succeeding")
            done = first_of(events.events, ids, "succeeded")
            queued = first_of(events.events, ids, "queued")
            throughput = (messages - 1) / (done[-1] - done[0])
            bridge_rate = ((len(queued) - 1) / (queued[-1] - queued[0])
                           if len(queued) > 1 and queued[-1] > queued[0] else None)
            latencies = []
            for i in range(probes):
                message_id = actor.send(i, 2).message_id
                sent = time.time()
                history = await events.until_state(message_id, {"succeeded"}, timeout=60)
                latencies.append((history[-1].ts.timestamp() - sent) * 1000)
    finally:
        if bridge is not None:
            await asyncio.to_thread(bridge.stop)
        await asyncio.to_thread(worker.stop)
        broker.close()
    return SideResult("bridged", round_no, messages, throughput, bridge_rate,
                      statistics.median(latencies), percentile(latencies, 0.95),
                      max(latencies))


def summary(results: list[SideResult]) -> dict[str, Any]:
    def median(side: str, field: str) -> float:
        values: list[float] = [getattr(r, field) for r in results if r.side == side]
        return statistics.median(values)

    dramatiq_tp, bridged_tp = median("dramatiq", "throughput"), median("bridged", "throughput")
    return {
        "dramatiq_throughput": dramatiq_tp,
        "bridged_throughput": bridged_tp,
        "ratio": bridged_tp / dramatiq_tp,
        "goal_met": bridged_tp / dramatiq_tp >= 0.8,
        "dramatiq_latency_p50_ms": median("dramatiq", "latency_p50_ms"),
        "bridged_latency_p50_ms": median("bridged", "latency_p50_ms"),
        "added_latency_p50_ms": (median("bridged", "latency_p50_ms")
                                 - median("dramatiq", "latency_p50_ms")),
    }


async def bench(args: argparse.Namespace, settings: Settings,
                busy_before: float) -> dict[str, Any]:
    results: list[SideResult] = []
    for round_no in range(1, args.rounds + 1):
        sides = [run_dramatiq, run_bridged]
        if round_no % 2 == 0:
            sides.reverse()
        for side in sides:
            result = await side(settings, round_no, args.messages, args.concurrency,
                                args.probes)
            results.append(result)
            print(f"round {round_no} {result.side:9s} {result.throughput:8.1f}/s  "
                  f"bridge {result.bridge_rate or 0:8.1f}/s  p50 "
                  f"{result.latency_p50_ms:7.1f} ms  p95 {result.latency_p95_ms:7.1f} ms",
                  flush=True)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "busy_before_percent": busy_before},
        "versions": {"dramatiq": dramatiq.__version__},
        "parameters": vars(args),
        "rounds": [asdict(r) for r in results],
        "summary": summary(results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    busy_before = psutil.cpu_percent(interval=1.0)
    with private_vhost("cargo-bench-bridge") as settings:
        report = asyncio.run(bench(args, settings, busy_before))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bridge-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    s = report["summary"]
    print(f"\ndramatiq {s['dramatiq_throughput']:.1f}/s, bridged {s['bridged_throughput']:.1f}/s: "
          f"{s['ratio']:.2f}x (goal >= 0.8x {'met' if s['goal_met'] else 'NOT met'}); "
          f"added latency p50 {s['added_latency_p50_ms']:.1f} ms; {path}")
    sys.exit(0)


if __name__ == "__main__":
    main()
