"""Worker drain: Cargo's worker against bare Celery draining the same pre-filled tasks.

Issue 13's "Worker drain" section. On one private vhost, for each ``P`` in
``--processes`` (default 2 and 8) and each round, three sides drain ``--tasks``
pre-filled ``calculate_distance(i, 1)`` tasks (``math.hypot``) with ``P`` processes:

- **cargo**: ``cargoctl worker --concurrency P`` (prefork; this checkout's code,
  via PYTHONPATH) on Cargo's task queue, every guarantee on: lifecycle events
  on the stream, late acks, prefetch 1, confirms, duplicate and memory guards;
- **bare Celery** (the peer, ``bench/peers/celery_bare.py``): ``celery worker
  -c P -P prefork`` with the same late acks / prefetch 1 / confirms, on a quorum
  queue declared with the arguments of Cargo's task queue (``broker.topology``);
- **the guarantee's floor** (informational, ``bench/peers/celery_outcomes.py``):
  the bare-Celery peer plus one outcome message per task published to a stream
  and confirmed before the late ack, the least that Cargo's "acknowledged only
  after its outcome is confirmed" can cost, with none of Cargo's code;
- **Dramatiq** (the ceiling, informational): ``dramatiq --processes P --threads 1``
  (``bench/peers/dramatiq_peer.py``) on its own classic queue.

The tasks are published first, then the worker starts; the drain is timed by
the queue's depth (``bench/depth.py``: passive ``queue_declare`` polling, the same
method for every side and nothing added to any worker), rate = tasks / (last
sample with every task ready -> first sample of the empty queue). The sides'
order alternates from one drain to the next; the rows are medians over
``--rounds``. Cross-checks, after each drain: Cargo's ``succeeded`` events on the
stream (every task must have one; their first-to-last rate is recorded) and
Dramatiq's completion file. CPU per task of the worker's process tree and of
RabbitMQ over the drain is informational.

    .venv/bin/python -m bench.drain --tasks 3000 --processes 2 8 --rounds 1
    .venv/bin/python -m bench.drain --json-out /tmp/drain.json   # for bench.pipeline
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import celery
import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from bench.depth import DrainTiming, rate, watch_drain
from bench.peers import celery_bare, celery_outcomes
from bench.procs import BIN, Proc, start_worker
from bench.sections import Row, SectionReport, conditions, quick_or_full, run_section
from bench.stream_tally import StreamTally
from bench.vhost import private_vhost, process_env
from broker.declare import celery_routing, declare_with_kombu
from broker.settings import Settings
from broker.topology import build_topology

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DRAMATIQ_QUEUE = "dramatiq_peer"
SIDES = ("cargo", "celery", "floor", "dramatiq")
PEER_NAME = "bare Celery (same acks/prefetch/confirms, quorum queue)"
CEILING_NAME = "Dramatiq worker (ceiling)"
FLOOR_NAME = "bare Celery + a confirmed outcome per task before the ack (the guarantee's floor)"
GOAL_VS_CELERY = 0.8
GOAL_MORE_PROCESSES = 1.0


@dataclass
class DrainResult:
    side: str
    processes: int
    round: int
    tasks: int
    rate: float  # tasks/s by queue depth
    seconds: float
    worker_cpu_ms: float | None  # per task, the worker's process tree
    rabbitmq_cpu_ms: float | None  # per task, beam.smp
    completion_rate: float | None  # cross-check: first-to-last completion (cargo, dramatiq)


# Processes


def start_cargo_worker(settings: Settings, processes: int, log_dir: Path) -> Proc:
    return start_worker(f"drain-cargo-p{processes}", process_env(settings), log_dir, processes)


def start_celery_worker(settings: Settings, processes: int, log_dir: Path,
                        app: str = "bench.peers.celery_bare:app") -> Proc:
    """``app``: the bare peer, or the floor peer (``bench.peers.celery_outcomes:app``)."""
    env = process_env(settings, **{celery_bare.URL_VARIABLE: settings.rabbitmq_url})
    # The flags Cargo's worker runs with (workers.runner.worker_argv), nothing else.
    return Proc(f"drain-{app.split('.')[-1].split(':')[0]}-p{processes}", [
        str(BIN / "celery"), "-A", app, "worker", "--pool=prefork",
        f"--concurrency={processes}", f"--queues={celery_bare.QUEUE}", "--loglevel=WARNING",
        "--without-mingle", "--without-gossip"], env, log_dir)


def start_dramatiq_worker(settings: Settings, processes: int, queue: str, done_dir: Path,
                          log_dir: Path) -> Proc:
    env = process_env(settings, BENCH_DRAMATIQ_URL=settings.rabbitmq_url,
                      BENCH_DRAMATIQ_QUEUE=queue, BENCH_DRAMATIQ_DONE_DIR=str(done_dir))
    return Proc(f"drain-dramatiq-p{processes}", [
        str(BIN / "dramatiq"), "bench.peers.dramatiq_peer:setup", "--processes",
        str(processes), "--threads", "1", "--queues", queue], env, log_dir)


# Filling the queues (before any worker runs)


def _never_called(x: float, y: float) -> float:
    raise AssertionError("the consumers run the actor, not the producer")


def dramatiq_producer(settings: Settings,
                      queue: str) -> tuple[RabbitmqBroker, dramatiq.Actor[Any, Any]]:
    broker = RabbitmqBroker(url=settings.rabbitmq_url)
    decorate = dramatiq.actor(broker=broker, actor_name="calculate_distance", queue_name=queue)
    return broker, decorate(_never_called)


def done_times(directory: Path) -> list[float]:
    """Completion times the Dramatiq peer appended, one file per process."""
    times: list[float] = []
    for path in directory.glob("*.done"):
        times += [float(line) for line in path.read_text().split()]
    return sorted(times)


def fill_cargo(settings: Settings, tasks: int) -> set[str]:
    """Celery's ``send_task`` routed by Cargo's topology, as any Celery producer of Cargo's."""
    topology = build_topology(settings)
    app = celery.Celery("cargo-bench-producer", set_as_current=False)
    app.conf.update(broker_url=settings.rabbitmq_url, task_serializer="json",
                    broker_transport_options={"confirm_publish": True},
                    **celery_routing(topology))
    with app.connection_for_write() as connection:
        declare_with_kombu(connection, topology)
        return {app.send_task("calculate_distance", args=(i, 1), connection=connection).id
                for i in range(tasks)}


def fill_celery(settings: Settings, tasks: int) -> None:
    app = celery_bare.create_app(settings)
    with app.connection_for_write() as connection:
        for queue in app.conf.task_queues:
            queue(connection.default_channel).declare()
        for i in range(tasks):
            app.send_task("calculate_distance", args=(i, 1), connection=connection)


def fill_dramatiq(settings: Settings, tasks: int, queue: str) -> None:
    broker, actor = dramatiq_producer(settings, queue)
    try:
        for i in range(tasks):
            actor.send(i, 1)
    finally:
        broker.close()


# One drain


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout}s")
        await asyncio.sleep(0.05)


async def timed_drain(settings: Settings, queues: list[str], tasks: int,
                      start: Callable[[], Proc],
                      running: tuple[Proc, ...] = ()) -> tuple[Proc, DrainTiming]:
    """Start the depth poller, then the worker (``start``); wait until the queues are empty.

    ``running``: processes already started that take part (their CPU counts too).
    """
    holder: list[Proc] = []

    def pids() -> list[int]:
        return [proc.popen.pid for proc in (*running, *holder)]

    watcher = asyncio.create_task(watch_drain(
        settings.rabbitmq_url, queues, tasks, pids, timeout=max(120.0, tasks / 20),
        alive=lambda: all(proc.alive() for proc in (*running, *holder))))
    await asyncio.sleep(0.1)  # the poller's first samples see every task ready
    if watcher.done():
        await watcher  # raises what went wrong
    holder.append(start())  # from the main thread: bench.procs' guards need it
    try:
        return holder[0], await watcher
    except BaseException:
        holder[0].stop()
        raise


def result_of(side: str, processes: int, round_no: int, tasks: int, timing: DrainTiming,
              completion_rate: float | None) -> DrainResult:
    start, end = timing.window(tasks)
    worker_cpu, rabbit_cpu = timing.cpu_per_task_ms(tasks)
    return DrainResult(side, processes, round_no, tasks, rate(tasks, start, end), end - start,
                       worker_cpu, rabbit_cpu, completion_rate)


def first_times(tally: StreamTally, ids: set[str], state: str = "succeeded") -> dict[str, float]:
    """Each task's first ``state`` event time, for those of ``ids`` that have one."""
    seen: dict[str, float] = {}
    for task_id in ids:
        for event in tally.events.get(task_id, ()):
            if event.state.value == state:
                seen[task_id] = event.ts.timestamp()
                break
    return seen


async def succeeded_rate(settings: Settings, ids: set[str], timeout: float) -> float:
    """Every task of ``ids`` has a ``succeeded`` event (else raise); their first-to-last rate."""
    async with StreamTally([settings.rabbitmq_url]) as tally:
        deadline = time.monotonic() + timeout
        while len(done := first_times(tally, ids)) < len(ids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ids) - len(done)} tasks without a succeeded event")
            await asyncio.sleep(0.2)
    times = sorted(done.values())
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


async def drain_cargo(settings: Settings, processes: int, round_no: int, tasks: int,
                      log_dir: Path) -> DrainResult:
    ids = fill_cargo(settings, tasks)
    worker, timing = await timed_drain(settings, [settings.task_queue], tasks,
                                       lambda: start_cargo_worker(settings, processes, log_dir))
    worker.stop()
    completion = await succeeded_rate(settings, ids, timeout=60)
    return result_of("cargo", processes, round_no, tasks, timing, completion)


async def drain_celery(settings: Settings, processes: int, round_no: int, tasks: int,
                       log_dir: Path) -> DrainResult:
    fill_celery(settings, tasks)
    worker, timing = await timed_drain(settings, [celery_bare.QUEUE], tasks,
                                       lambda: start_celery_worker(settings, processes, log_dir))
    worker.stop()
    return result_of("celery", processes, round_no, tasks, timing, None)


async def drain_floor(settings: Settings, processes: int, round_no: int, tasks: int,
                      log_dir: Path) -> DrainResult:
    await celery_outcomes.delete_outcomes(settings.rabbitmq_url)
    fill_celery(settings, tasks)
    worker, timing = await timed_drain(
        settings, [celery_bare.QUEUE], tasks,
        lambda: start_celery_worker(settings, processes, log_dir,
                                    f"{celery_outcomes.__name__}:app"))
    worker.stop()
    written = await celery_outcomes.count_outcomes(settings.rabbitmq_url, tasks, timeout=30)
    if written != tasks:  # a failed write is only logged by Celery's signal: caught here
        raise RuntimeError(f"the floor peer wrote {written} outcomes for {tasks} tasks")
    return result_of("floor", processes, round_no, tasks, timing, None)


async def dramatiq_drained(settings: Settings, queue: str, tasks: int, processes: int,
                           done_dir: Path, log_dir: Path) -> tuple[Proc, DrainTiming]:
    """Fill ``queue`` with ``tasks`` messages, time Dramatiq's worker draining it and wait
    for every completion in ``done_dir``; the worker goes on running (the caller stops it)."""
    fill_dramatiq(settings, tasks, queue)
    worker, timing = await timed_drain(
        settings, [queue], tasks,
        lambda: start_dramatiq_worker(settings, processes, queue, done_dir, log_dir))
    try:
        await wait_until(lambda: len(done_times(done_dir)) >= tasks, 60,
                         "Dramatiq's completions")
    except BaseException:
        worker.stop()
        raise
    return worker, timing


async def drain_dramatiq(settings: Settings, processes: int, round_no: int, tasks: int,
                         log_dir: Path) -> DrainResult:
    with tempfile.TemporaryDirectory(prefix="bench-drain-dramatiq-") as tmp:
        done_dir = Path(tmp)
        worker, timing = await dramatiq_drained(settings, DRAMATIQ_QUEUE, tasks, processes,
                                                done_dir, log_dir)
        worker.stop()
        times = done_times(done_dir)
        if len(times) < tasks:
            raise RuntimeError(f"dramatiq completed {len(times)} of {tasks}")
    completion = (tasks - 1) / (times[tasks - 1] - times[0])
    return result_of("dramatiq", processes, round_no, tasks, timing, completion)


DRAINS = {"cargo": drain_cargo, "celery": drain_celery, "floor": drain_floor,
          "dramatiq": drain_dramatiq}


# The section


def median_rate(results: list[DrainResult], side: str, processes: int,
                field: str = "rate") -> float | None:
    values = [getattr(r, field) for r in results
              if r.side == side and r.processes == processes and getattr(r, field) is not None]
    return statistics.median(values) if values else None


def paired_ratios(results: list[DrainResult], processes: int) -> list[float]:
    """Cargo / bare Celery round by round (the two drained seconds apart: on a shared
    machine a paired ratio moves less than the rates do)."""
    rates = {(r.side, r.round): r.rate for r in results if r.processes == processes}
    return [rates["cargo", n] / rates["celery", n] for (side, n) in sorted(rates)
            if side == "cargo" and ("celery", n) in rates]


def rows(results: list[DrainResult], processes: list[int]) -> list[Row]:
    """The summary: Cargo against bare Celery at each P (goal), Cargo's own scaling
    (goal), Dramatiq's ceiling and the CPU per task (informational)."""
    table: list[Row] = []
    for p in processes:
        table.append(Row(f"worker drain, tasks/s (P={p})", "tasks/s",
                         median_rate(results, "cargo", p), median_rate(results, "celery", p),
                         PEER_NAME, goal=GOAL_VS_CELERY))
    if len(processes) > 1:
        low, high = min(processes), max(processes)
        table.append(Row(f"worker drain, Cargo at P={high} vs at P={low}", "tasks/s",
                         median_rate(results, "cargo", high), median_rate(results, "cargo", low),
                         f"Cargo at P={low}", goal=GOAL_MORE_PROCESSES))
    for p in processes:
        if median_rate(results, "floor", p) is not None:
            table.append(Row(f"worker drain, the guarantee's floor vs bare Celery (P={p})",
                             "tasks/s", median_rate(results, "floor", p),
                             median_rate(results, "celery", p), PEER_NAME,
                             note=f"the first column is {FLOOR_NAME}, not Cargo"))
            table.append(Row(f"worker drain, tasks/s (P={p}), against the guarantee's floor",
                             "tasks/s", median_rate(results, "cargo", p),
                             median_rate(results, "floor", p), FLOOR_NAME))
    for p in processes:
        if median_rate(results, "dramatiq", p) is not None:
            table.append(Row(f"worker drain, tasks/s (P={p}), ceiling", "tasks/s",
                             median_rate(results, "cargo", p), median_rate(results, "dramatiq", p),
                             CEILING_NAME))
    for p in processes:
        for field, what in (("worker_cpu_ms", "worker tree"), ("rabbitmq_cpu_ms", "RabbitMQ")):
            table.append(Row(f"worker drain, {what} CPU per task (P={p})", "ms CPU/task",
                             median_rate(results, "cargo", p, field),
                             median_rate(results, "celery", p, field), "bare Celery",
                             better="lower"))
    return table


def print_result(result: DrainResult) -> None:
    def ms(value: float | None) -> str:
        return "   -" if value is None else f"{value:5.2f}"

    check = ("" if result.completion_rate is None
             else f"  (completions {result.completion_rate:,.0f}/s)")
    print(f"P={result.processes} round {result.round} {result.side:9s} {result.rate:8,.0f} tasks/s "
          f"in {result.seconds:6.2f} s   CPU/task worker {ms(result.worker_cpu_ms)} ms, "
          f"RabbitMQ {ms(result.rabbitmq_cpu_ms)} ms{check}", flush=True)


async def run(args: argparse.Namespace) -> SectionReport:
    results: list[DrainResult] = []
    load_before = os.getloadavg()
    log_dir = Path(tempfile.gettempdir()) / "cargo-bench-logs"
    skipped = {side for side, wanted in (("dramatiq", args.dramatiq), ("floor", args.floor))
               if not wanted}
    sides = [s for s in SIDES if s not in skipped]
    with private_vhost("cargo-bench-drain") as settings:
        drains = 0
        for processes in args.processes:
            for round_no in range(1, args.rounds + 1):
                order = sides if drains % 2 == 0 else sides[::-1]
                drains += 1
                for side in order:
                    result = await DRAINS[side](settings, processes, round_no, args.tasks,
                                                log_dir)
                    results.append(result)
                    print_result(result)
    return SectionReport("drain", rows(results, args.processes), raw={
        **conditions(load_before),
        "parameters": {k: v for k, v in vars(args).items() if k != "json_out"},
        "method": "queue depth (passive queue_declare) polling; rate = tasks / "
                  "(last sample with all ready -> first sample of the empty queue)",
        "cargo_over_celery_by_round": {p: paired_ratios(results, p) for p in args.processes},
        "drains": [asdict(r) for r in results],
    })


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parse.add_argument("--tasks", type=int, default=None, help="per drain (default 3000)")
    parse.add_argument("--processes", type=int, nargs="+", default=[2, 8])
    parse.add_argument("--rounds", type=int, default=None, help="default 2")
    parse.add_argument("--quick", action="store_true",
                       help="smoke run: 500 tasks, one round (unless given)")
    parse.add_argument("--no-dramatiq", dest="dramatiq", action="store_false",
                       help="skip the Dramatiq ceiling")
    parse.add_argument("--no-floor", dest="floor", action="store_false",
                       help="skip the guarantee's floor (bare Celery + confirmed outcomes)")
    parse.add_argument("--json-out", type=Path, default=None,
                       help="where to write the section report (default: bench/results/)")
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return quick_or_full(parser().parse_args(argv), {"tasks": (500, 3000), "rounds": (1, 2)})


def main() -> None:
    run_section(run, parse_args(), RESULTS)


if __name__ == "__main__":
    main()
