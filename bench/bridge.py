"""Bridge: Dramatiq messages run by Cargo, against bare Celery draining the same tasks.

Issue 13's "Bridge" section. On one private vhost, with the same concurrency
``C`` and ``--messages`` N each round, three sides drain pre-filled work:

- **bridged**: N messages from Dramatiq's own producer (``RabbitmqBroker``,
  ``actor.send``) wait in the Dramatiq queue; a Cargo worker (``cargoctl worker
  --concurrency C``) is consuming, then ``cargoctl bridge`` (the real bridge)
  starts, translates each message into a Celery task on Cargo's queue, and the
  worker runs ``calculate_distance``;
- **bare Celery** (the peer; goal: bridged >= 0.8x): ``bench.drain``'s bare
  Celery drain of N ``calculate_distance`` tasks with ``C`` processes (late acks,
  prefetch 1, confirms, a quorum queue with Cargo's task-queue arguments);
- **Dramatiq** (the ceiling, informational): Dramatiq's own worker
  (``--processes C --threads 1``) on the same producer's messages.

Throughput is measured as in ``bench.drain`` (``bench/depth.py``): queue depth
polled from outside, tasks / (last sample with all N waiting -> first sample of
the final empty run). For the bridged side the depth is the Dramatiq queue's
plus Cargo's, and the end is the later of that and the last ``succeeded`` event
(the bridge may still hold messages while both queues look empty). The
``succeeded`` events are read back from the stream after the drain, so reading
them takes no CPU from it; the bridge's own rate (first to last ``queued``
announcement) is recorded too.

Latency (informational): with the consumers idle, ``--probes`` messages are sent
one at a time; latency is the completion (``succeeded`` event, or the Dramatiq
peer's completion line) minus the moment ``send`` returned.

Sides alternate per round; rows are medians over rounds.

    .venv/bin/python -m bench.bridge --messages 3000 --concurrency 2 --rounds 2
    .venv/bin/python -m bench.bridge --json-out /tmp/bridge.json   # for bench.pipeline
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import dramatiq

from bench.depth import consumers, rate
from bench.drain import (
    CEILING_NAME,
    PEER_NAME,
    RESULTS,
    done_times,
    drain_celery,
    dramatiq_drained,
    dramatiq_producer,
    first_times,
    start_cargo_worker,
    timed_drain,
    wait_until,
)
from bench.procs import BIN, Proc
from bench.sections import Row, SectionReport, conditions, quick_or_full, run_section
from bench.stats import percentile
from bench.stream_tally import StreamTally
from bench.vhost import private_vhost, process_env
from broker.settings import Settings

BRIDGED_QUEUE = "default"  # CARGO_BRIDGE_QUEUES' default
PEER_QUEUE = "dramatiq_peer"
GOAL_VS_CELERY = 0.8


@dataclass
class SideResult:
    side: str  # "bridged", "celery", "dramatiq"
    round: int
    messages: int
    throughput: float  # tasks/s by queue depth
    seconds: float
    completion_rate: float | None  # cross-check: first-to-last completion
    bridge_rate: float | None  # bridged only: translations per second
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_max_ms: float | None


def latency_fields(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"latency_p50_ms": None, "latency_p95_ms": None, "latency_max_ms": None}
    return {"latency_p50_ms": statistics.median(latencies),
            "latency_p95_ms": percentile(latencies, 95), "latency_max_ms": max(latencies)}


def log_dir() -> Path:
    return Path(tempfile.gettempdir()) / "cargo-bench-logs"


# Dramatiq's own worker


async def run_dramatiq(settings: Settings, round_no: int, messages: int, concurrency: int,
                       probes: int) -> SideResult:
    with tempfile.TemporaryDirectory(prefix="bench-dramatiq-") as tmp:
        directory = Path(tmp)
        worker, timing = await dramatiq_drained(settings, PEER_QUEUE, messages, concurrency,
                                                directory, log_dir())
        broker, actor = dramatiq_producer(settings, PEER_QUEUE)
        try:
            times = done_times(directory)[:messages]
            latencies = []
            for i in range(probes):
                before = len(done_times(directory))
                actor.send(i, 2)
                sent = time.time()
                await wait_until(lambda b=before: len(done_times(directory)) > b,  # type: ignore[misc]
                                 60, "a dramatiq probe")
                latencies.append((done_times(directory)[-1] - sent) * 1000)
        finally:
            worker.stop()
            broker.close()
    start, end = timing.window(messages)
    return SideResult("dramatiq", round_no, messages, rate(messages, start, end), end - start,
                      (messages - 1) / (times[-1] - times[0]), None, **latency_fields(latencies))


# The bridge and a Cargo worker


def start_bridge(settings: Settings, round_no: int) -> Proc:
    name = f"bench-bridge-{round_no}"
    env = process_env(settings, CARGO_BRIDGE_METRICS_PORT="0", CARGO_BRIDGE_QUEUES=BRIDGED_QUEUE,
                      CARGO_BRIDGE_HEARTBEAT_FILE=str(log_dir() / f"{name}-{os.getpid()}.json"))
    return Proc(name, [str(BIN / "cargoctl"), "bridge"], env, log_dir())


async def wait_consuming(settings: Settings, worker: Proc, timeout: float = 60) -> None:
    """Until the worker consumes its queue (then its catalog is announced: the bridge
    treats a message for a task no live worker announced as poison)."""
    deadline = time.monotonic() + timeout
    while await consumers(settings.rabbitmq_url, settings.task_queue) == 0:
        if not worker.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the Cargo worker is not consuming; see {worker.log_path}")
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # the announcement follows the consumer's start


async def run_bridged(settings: Settings, round_no: int, messages: int, concurrency: int,
                      probes: int) -> SideResult:
    broker, actor = dramatiq_producer(settings, BRIDGED_QUEUE)
    worker = start_cargo_worker(settings, concurrency, log_dir())
    bridge: Proc | None = None
    try:
        await wait_consuming(settings, worker)
        ids = {actor.send(i, 1).message_id for i in range(messages)}
        bridge, timing = await timed_drain(
            settings, [BRIDGED_QUEUE, settings.task_queue], messages,
            lambda: start_bridge(settings, round_no), running=(worker,))
        async with StreamTally([settings.rabbitmq_url]) as tally:
            await wait_until(lambda: len(first_times(tally, ids)) >= messages, 120,
                             "the bridged messages succeeding")
            done = sorted(first_times(tally, ids).values())
            queued = sorted(first_times(tally, ids, "queued").values())
            latencies = []
            for i in range(probes):
                message_id = actor.send(i, 2).message_id
                sent = time.time()
                await wait_until(lambda m=message_id: bool(first_times(tally, {m})),  # type: ignore[misc]
                                 60, "a bridged probe")
                latencies.append((first_times(tally, {message_id})[message_id] - sent) * 1000)
    finally:
        if bridge is not None:
            bridge.stop()
        worker.stop()
        broker.close()
    start, end = timing.window(messages)
    end = max(end, done[-1])  # messages the bridge still held while both queues looked empty
    bridge_rate = ((len(queued) - 1) / (queued[-1] - queued[0])
                   if len(queued) > 1 and queued[-1] > queued[0] else None)
    return SideResult("bridged", round_no, messages, rate(messages, start, end), end - start,
                      (messages - 1) / (done[-1] - done[0]), bridge_rate,
                      **latency_fields(latencies))


# Bare Celery


async def run_celery(settings: Settings, round_no: int, messages: int, concurrency: int,
                     probes: int) -> SideResult:
    result = await drain_celery(settings, concurrency, round_no, messages, log_dir())
    return SideResult("celery", round_no, messages, result.rate, result.seconds, None, None,
                      **latency_fields([]))


def print_result(result: SideResult) -> None:
    def figure(value: float | None, unit: str) -> str:
        return "-" if value is None else f"{value:,.1f}{unit}"

    print(f"round {result.round} {result.side:9s} {result.throughput:8,.0f} tasks/s  "
          f"completions {figure(result.completion_rate, '/s')}  "
          f"bridge {figure(result.bridge_rate, '/s')}  "
          f"p50 {figure(result.latency_p50_ms, ' ms')}", flush=True)


SIDES = {"bridged": run_bridged, "celery": run_celery, "dramatiq": run_dramatiq}


def median(results: list[SideResult], side: str, field: str) -> float | None:
    values = [getattr(r, field) for r in results
              if r.side == side and getattr(r, field) is not None]
    return statistics.median(values) if values else None


def rows(results: list[SideResult], concurrency: int) -> list[Row]:
    bridged = median(results, "bridged", "throughput")
    return [
        Row(f"bridge: Dramatiq messages bridged end to end, tasks/s (C={concurrency})",
            "tasks/s", bridged, median(results, "celery", "throughput"), PEER_NAME,
            goal=GOAL_VS_CELERY),
        Row(f"bridge: bridged, tasks/s (C={concurrency}), ceiling", "tasks/s", bridged,
            median(results, "dramatiq", "throughput"), CEILING_NAME),
        Row("bridge: latency p50, send -> completion", "ms",
            median(results, "bridged", "latency_p50_ms"),
            median(results, "dramatiq", "latency_p50_ms"), CEILING_NAME, better="lower"),
    ]


async def bench(args: argparse.Namespace) -> SectionReport:
    results: list[SideResult] = []
    names = list(SIDES)
    load_before = os.getloadavg()
    with private_vhost("cargo-bench-bridge") as settings:
        for round_no in range(1, args.rounds + 1):
            for side in names if round_no % 2 else names[::-1]:
                result = await SIDES[side](settings, round_no, args.messages, args.concurrency,
                                           args.probes)
                results.append(result)
                print_result(result)
    return SectionReport("bridge", rows(results, args.concurrency), raw={
        **conditions(load_before),
        "versions": {"dramatiq": dramatiq.__version__},
        "parameters": {k: v for k, v in vars(args).items() if k != "json_out"},
        "rounds": [asdict(r) for r in results],
    })


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parse.add_argument("--messages", "--tasks", dest="messages", type=int, default=None,
                       help="per side and round (default 3000)")
    parse.add_argument("--concurrency", type=int, default=2)
    parse.add_argument("--probes", type=int, default=None, help="default 30")
    parse.add_argument("--rounds", type=int, default=None, help="default 2")
    parse.add_argument("--quick", action="store_true",
                       help="smoke run: 500 messages, 5 probes, one round (unless given)")
    parse.add_argument("--json-out", type=Path, default=None,
                       help="where to write the section report (default: bench/results/)")
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return quick_or_full(parser().parse_args(argv),
                         {"messages": (500, 3000), "probes": (5, 30), "rounds": (1, 2)})


def main() -> None:
    run_section(bench, parse_args(), RESULTS)


if __name__ == "__main__":
    main()
