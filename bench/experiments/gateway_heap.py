"""What stays alive in the gateway after thousands of WebSocket clients left, measured.

``bench.fanout``'s per-task scenario ends with the gateway's RSS far above where
it started. This experiment tells live objects from memory the allocators keep:
it runs the gateway in a process of its own under ``tracemalloc``
(``--serve PORT``), takes a snapshot before the clients connect, runs N clients
each subscribed to its own task (``bench.fanout_clients``, in processes of their
own) and submits those N tasks, waits until the clients closed and the gateway's
memory releaser ran, then takes a second snapshot and prints the RSS at each
step and the growth of live Python memory, largest first.

An experiment, not part of Cargo (tracemalloc itself costs memory: compare the
traced figures with each other, not with ``bench.fanout``'s RSS).

    .venv/bin/python -m bench.experiments.gateway_heap --clients 3000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import signal
import sys
import tempfile
import tracemalloc
from pathlib import Path
from types import FrameType

import aiohttp
import psutil

from bench.fanout import ClientProcs, catalog_has, split, submit_all, task_id_for
from bench.procs import BIN, Proc, free_port, start_worker, wait_ready
from bench.vhost import private_vhost, process_env

REPORT_VARIABLE = "BENCH_HEAP_REPORT"
SETTLE_SECONDS = 12.0  # the gateway's memory releaser looks every 5 s


def serve(port: int) -> None:
    """The gateway under tracemalloc: SIGUSR2 takes the first snapshot, SIGUSR1 writes
    the growth since then to ``$BENCH_HEAP_REPORT``."""
    from aiohttp import web

    from broker.settings import load_settings
    from gateway.app import create_app

    tracemalloc.start(8)
    report = Path(os.environ[REPORT_VARIABLE])
    first: list[tracemalloc.Snapshot] = []

    def take_first(signum: int, frame: FrameType | None) -> None:
        gc.collect()
        first[:] = [tracemalloc.take_snapshot()]
        report.with_suffix(".ready").write_text("ok")

    def write_growth(signum: int, frame: FrameType | None) -> None:
        gc.collect()
        stats = tracemalloc.take_snapshot().compare_to(first[0], "traceback")
        lines = [f"live Python memory grew by {sum(s.size_diff for s in stats) / 2**20:.1f} MB"]
        for stat in stats[:25]:
            lines.append(f"{stat.size_diff / 2**20:8.2f} MB {stat.count_diff:+9d} objects")
            lines += [f"      {line}" for line in stat.traceback.format()[-6:]]
        report.write_text("\n".join(lines) + "\n")

    signal.signal(signal.SIGUSR2, take_first)
    signal.signal(signal.SIGUSR1, write_growth)
    web.run_app(create_app(load_settings()), host="127.0.0.1", port=port, print=None,
                access_log=None)


async def until_exists(path: Path, timeout: float = 60) -> None:
    for _ in range(int(timeout * 10)):
        if await asyncio.to_thread(path.exists):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{path} was not written")


async def run(clients: int, processes: int) -> None:
    with private_vhost("cargo-bench-heap") as settings, \
            tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        report = workdir / "growth.txt"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = process_env(settings, **{REPORT_VARIABLE: str(report)})
        gateway = Proc("heap-gateway", [str(BIN / "python"), "-m",
                                        "bench.experiments.gateway_heap", "--serve",
                                        str(port)], env, workdir)
        worker = start_worker("heap-worker", process_env(settings), workdir, 2)
        try:
            rss = psutil.Process(gateway.popen.pid).memory_info
            async with aiohttp.ClientSession() as http:
                await wait_ready(http, url, gateway)
                await catalog_has(http, url, "calculate_distance")
                os.kill(gateway.popen.pid, signal.SIGUSR2)
                await until_exists(report.with_suffix(".ready"))
                print(f"gateway RSS before the clients: {rss().rss / 2**20:.0f} MB")
                keys = [f"heap-{secrets.token_hex(6)}" for _ in range(clients)]
                ids = workdir / "ids.json"
                ids.write_text(json.dumps([task_id_for(key) for key in keys]))
                group = ClientProcs.start(url.replace("http", "ws", 1) + "/ws", "task", ids,
                                          split(clients, processes), 300)
                try:
                    await group.expect("READY")
                    print(f"{clients} clients subscribed: {rss().rss / 2**20:.0f} MB")
                    statuses = await submit_all(http, url, keys)
                    await group.reports()
                    print(f"submitted {dict(statuses)}: {rss().rss / 2**20:.0f} MB")
                    group.close()
                    await group.expect("CLOSED")
                finally:
                    group.stop()
                await asyncio.sleep(SETTLE_SECONDS)
                print(f"{SETTLE_SECONDS:g} s after they left: {rss().rss / 2**20:.0f} MB")
                os.kill(gateway.popen.pid, signal.SIGUSR1)
                await until_exists(report)
                print(report.read_text())
        finally:
            gateway.stop()
            worker.stop()


def main() -> None:
    if "--serve" in sys.argv:
        serve(int(sys.argv[sys.argv.index("--serve") + 1]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--client-processes", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(run(args.clients, args.client_processes))


if __name__ == "__main__":
    main()
