"""The floor under Cargo's worker drain: what its lifecycle events cost, measured.

Drains pre-filled ``calculate_distance`` tasks (``bench.drain``'s filling, timing
by queue depth and CPU reading) with bare Celery and with Cargo's worker run in
modes that patch, in the worker process only, how much of the events path runs:

- ``no-events``: no lifecycle event is built or published (the rest of Cargo's
  worker as is: checks, metrics, memory guard, duplicate guard);
- ``no-publish``: events are built and merged, never published;
- ``children``: every task's events published by its own child (relay off);
- ``relay``: every short task's events relayed by the main process (threshold 1);
- ``default``: Cargo as shipped (the relay from 4 tasks held).

An experiment, not part of Cargo; the patches live here, in the worker process
started by this module (``--serve MODE``).

    .venv/bin/python -m bench.experiments.events_floor --tasks 3000 --processes 2 8
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import drain
from bench.procs import BIN, Proc
from bench.vhost import private_vhost, process_env

MODES = ("no-events", "no-publish", "children", "relay", "default")
RELAY_FROM = {"children": "10000", "relay": "1"}


def serve(mode: str) -> None:
    """Run a Cargo worker with ``mode``'s patch (the worker process's entry point)."""
    from broker.settings import load_settings
    from workers.lifecycle import LifecycleEvents
    from workers.runner import run_worker

    if mode == "no-events":
        LifecycleEvents._emit = lambda *args, **kwargs: None  # type: ignore[method-assign]
    elif mode == "no-publish":
        def publish_nothing(self: Any, events: Any, wait: bool) -> bool:
            return True

        LifecycleEvents._publish_batch = publish_nothing  # type: ignore[method-assign]
    processes = int(sys.argv[sys.argv.index("--processes") + 1])
    sys.exit(run_worker(load_settings(), processes, f"floor-{mode}@%h", []))


def start(settings: Any, mode: str, processes: int, log_dir: Path) -> Proc:
    env = process_env(settings, CARGO_WORKER_METRICS_PORT="0",
                      CARGO_WORKER_HEARTBEAT_FILE=str(log_dir / f"{mode}.heartbeat.json"),
                      **({"CARGO_EVENTS_RELAY_MIN_RUNNING": RELAY_FROM[mode]}
                         if mode in RELAY_FROM else {}))
    return Proc(f"floor-{mode}-p{processes}", [
        str(BIN / "python"), "-m", "bench.experiments.events_floor", "--serve", mode,
        "--processes", str(processes)], env, log_dir)


async def run(tasks: int, processes: list[int], modes: list[str]) -> None:
    with private_vhost("cargo-bench-floor") as settings, \
            tempfile.TemporaryDirectory() as logs:
        log_dir = Path(logs)
        for p in processes:
            result = await drain.drain_celery(settings, p, 1, tasks, log_dir)
            print(f"P={p} {'bare celery':12s} {result.rate:7.0f} tasks/s   worker "
                  f"{result.worker_cpu_ms:.2f} ms/task   RabbitMQ {result.rabbitmq_cpu_ms:.2f}",
                  flush=True)
            for mode in modes:
                drain.fill_cargo(settings, tasks)
                worker, timing = await drain.timed_drain(
                    settings, [settings.task_queue], tasks,
                    lambda mode=mode, p=p: start(settings, mode, p, log_dir))  # type: ignore[misc]
                worker.stop()
                result = drain.result_of(mode, p, 1, tasks, timing, None)
                print(f"P={p} {mode:12s} {result.rate:7.0f} tasks/s   worker "
                      f"{result.worker_cpu_ms:.2f} ms/task   RabbitMQ "
                      f"{result.rabbitmq_cpu_ms:.2f}", flush=True)


def main() -> None:
    if "--serve" in sys.argv:
        serve(sys.argv[sys.argv.index("--serve") + 1])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--processes", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args()
    asyncio.run(run(args.tasks, args.processes, args.modes))


if __name__ == "__main__":
    main()
