"""Fan-out: one gateway process serving thousands of WebSocket clients during a burst.

``python -m bench.fanout [--clients 10000] [--all-clients 1000] [--burst 1000]
[--client-processes 4] [--json-out PATH]`` runs two scenarios against a real
gateway subprocess (``cargoctl gateway``) and a real worker subprocess
(``cargoctl worker``, concurrency 2), in a private vhost created and deleted
through the management API on every way out:

* **per task** — ``--clients`` WebSocket clients, each subscribed to its own
  task id, then those tasks submitted (``POST /tasks/calculate_distance``);
* **all** — ``--all-clients`` clients subscribed to ``all``, then a burst of
  ``--burst`` submissions;
* **idle** (first, on a fresh gateway) — ``--idle-clients`` clients subscribed to
  task ids never submitted, then gone: the memory that connections alone take
  and how much of it the gateway gives back. In the per-task scenario the
  tasks' own state (the task store and event ring, kept by design up to
  ``CARGO_TASK_STORE_SIZE`` / ``CARGO_EVENT_BUFFER_SIZE``) is allocated while
  the 10,000 connections live, among their freed memory, and pins much of it
  (``bench/experiments/gateway_heap.py`` measures what stays alive).

The task ids are known before the submissions: each submission carries an
``Idempotency-Key``, and a key determines its task id (``gateway.tasks_api``
derives it); every 202 is checked to name the id the client subscribed to.
The clients live in ``--client-processes`` processes of their own
(:mod:`bench.fanout_clients`), so the gateway process's RSS and CPU are its own.
Every submission is made once (no retry): the goal is that every one is 202.

Reported per scenario: events the clients got against what they should get
(every client the ``succeeded`` event of each of its tasks, in order),
submissions by status, time from the first submission to the last delivery,
and the gateway's RSS before the clients connected, at its peak, right after
they closed and a few seconds later.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import psutil

from bench.fanout_clients import raise_open_files_limit
from bench.procs import Proc, clean_env, free_port, start_gateway, start_worker, wait_ready
from bench.sections import Row, SectionReport
from broker.management import ManagementClient
from broker.settings import Settings, load_settings
from gateway.tasks_api import IDEMPOTENCY_NAMESPACE

TASK = "calculate_distance"
SUBMIT_CONCURRENCY = 64
RSS_GOAL_MB = 400.0
# Of the memory idle clients took, the share the gateway may keep once they left.
KEPT_GOAL = 0.25
# How long after the clients closed the RSS is read again ("given back").
SETTLE_SECONDS = 12.0  # the gateway checks every 5 s whether to release memory
MB = 1024 * 1024


def task_id_for(key: str) -> str:
    """The id the gateway gives a submission with this Idempotency-Key."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{TASK}\x00{key}"))


class RssSampler:
    """The gateway's RSS, sampled in the background; ``peak`` since the last reset."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self._proc = psutil.Process(pid)
        self._interval = interval
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    def now(self) -> float:
        return float(self._proc.memory_info().rss) / MB

    def reset(self) -> None:
        self.peak = self.now()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.now())
            await asyncio.sleep(self._interval)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()


@dataclass
class Outcome:
    scenario: str
    clients: int
    tasks: int
    statuses: dict[str, int] = field(default_factory=dict)
    complete_clients: int = 0
    events: int = 0
    min_events: int = 0
    out_of_order: int = 0
    closed_early: int = 0
    submit_seconds: float = 0.0
    last_delivery_seconds: float | None = None
    # From an event's ts (the worker's clock, same machine) to its arrival at a
    # client: the gateway's share of the time; the worst client process's figure.
    lag_p50: float | None = None
    lag_p99: float | None = None
    lag_max: float | None = None
    rss_before: float = 0.0
    rss_connected: float = 0.0
    rss_peak: float = 0.0
    rss_closed: float = 0.0
    rss_settled: float = 0.0
    gateway_cpu_seconds: float = 0.0

    @property
    def accepted(self) -> int:
        return self.statuses.get("202", 0)


class ClientProcs:
    """``bench.fanout_clients`` processes, driven line by line."""

    def __init__(self, procs: list[subprocess.Popen[str]]) -> None:
        self.procs = procs

    @classmethod
    def start(cls, url: str, mode: str, ids_file: Path, counts: list[tuple[int, int]],
              timeout: float) -> ClientProcs:
        procs = []
        for first, count in counts:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "bench.fanout_clients", "--url", url, "--mode", mode,
                 "--ids-file", str(ids_file), "--first", str(first), "--count", str(count),
                 "--timeout", str(timeout)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                start_new_session=True))
        return cls(procs)

    async def expect(self, word: str) -> None:
        lines = await asyncio.gather(*(self._line(p) for p in self.procs))
        if any(line.strip() != word for line in lines):
            raise RuntimeError(f"client processes said {lines!r}, not {word}")

    async def reports(self) -> list[dict[str, Any]]:
        lines = await asyncio.gather(*(self._line(p) for p in self.procs))
        return [json.loads(line) for line in lines]

    def close(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.write("CLOSE\n")
                    proc.stdin.flush()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)

    @staticmethod
    async def _line(proc: subprocess.Popen[str]) -> str:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        if not line:
            raise RuntimeError(f"client process {proc.pid} exited ({proc.wait()})")
        return line


def split(total: int, parts: int) -> list[tuple[int, int]]:
    """(first, count) of ``parts`` nearly equal slices of ``total``."""
    parts = max(1, min(parts, total))
    size, extra = divmod(total, parts)
    slices, first = [], 0
    for n in range(parts):
        count = size + (1 if n < extra else 0)
        slices.append((first, count))
        first += count
    return slices


async def submit_all(http: aiohttp.ClientSession, url: str, keys: list[str]
                     ) -> collections.Counter[str]:
    statuses: collections.Counter[str] = collections.Counter()
    todo = iter(enumerate(keys))

    async def one_connection() -> None:
        for n, key in todo:
            async with http.post(f"{url}/tasks/{TASK}", json={"args": [n, 1]},
                                 headers={"Idempotency-Key": key}) as resp:
                doc = await resp.json()
                if resp.status == 202:
                    if doc["task_id"] != task_id_for(key):
                        raise RuntimeError(f"202 for {key} names {doc['task_id']}, not the "
                                           "id its clients subscribed to")
                    statuses["202"] += 1
                else:
                    statuses[f"{resp.status} {doc.get('error', {}).get('code')}"] += 1

    await asyncio.gather(*(one_connection() for _ in range(SUBMIT_CONCURRENCY)))
    return statuses


async def scenario(name: str, mode: str, clients: int, tasks: int, gateway: Proc,
                   url: str, processes: int, workdir: Path, timeout: float) -> Outcome:
    run = secrets.token_hex(4)
    # Idle clients subscribe to ids of their own that nothing is submitted for.
    keys = [f"fanout-{run}-{n}" for n in range(clients if mode == "idle" else tasks)]
    ids_file = workdir / f"ids-{name}.json"
    ids_file.write_text(json.dumps([task_id_for(k) for k in keys]))
    out = Outcome(name, clients, tasks)
    gw = psutil.Process(gateway.popen.pid)
    ws_url = url.replace("http", "ws", 1) + "/ws"
    await asyncio.sleep(1)
    sampler = RssSampler(gateway.popen.pid)
    out.rss_before = sampler.now()
    sampler.reset()
    cpu_before = sum(gw.cpu_times()[:2])
    group = ClientProcs.start(ws_url, mode, ids_file, split(clients, processes), timeout)
    try:
        with sampler:
            await group.expect("READY")
            out.rss_connected = sampler.now()
            print(f"  {name}: {clients} clients subscribed; gateway RSS "
                  f"{out.rss_connected:.0f} MB", flush=True)
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=SUBMIT_CONCURRENCY)) as http:
                started = time.time()
                out.statuses = dict(await submit_all(http, url, keys[:tasks]))
                out.submit_seconds = time.time() - started
            reports = await group.reports()
            out.gateway_cpu_seconds = sum(gw.cpu_times()[:2]) - cpu_before
            out.rss_peak = max(sampler.peak, sampler.now())
            group.close()
            await group.expect("CLOSED")
        await asyncio.sleep(0.5)
        out.rss_closed = sampler.now()
        await asyncio.sleep(SETTLE_SECONDS)
        out.rss_settled = sampler.now()
    finally:
        group.stop()
    out.complete_clients = sum(r["complete"] for r in reports)
    out.events = sum(r["events"] for r in reports)
    out.min_events = min(r["min_events"] for r in reports)
    out.out_of_order = sum(r["out_of_order"] for r in reports)
    out.closed_early = sum(r["closed_early"] for r in reports)
    last = max(r["last_at"] for r in reports)
    lags = [r["lags"] for r in reports if r["lags"]]
    if lags:
        out.lag_p50 = max(lag["p50"] for lag in lags)
        out.lag_p99 = max(lag["p99"] for lag in lags)
        out.lag_max = max(lag["max"] for lag in lags)
    out.last_delivery_seconds = (last - started if tasks and out.complete_clients == clients
                                 else None)
    return out


def rows(outcomes: list[Outcome]) -> list[Row]:
    result = []
    for o in outcomes:
        label = f"fan-out {o.scenario} ({o.clients:,} clients, {o.tasks:,} tasks)"
        if o.tasks == 0:
            result += [
                Row(f"{label}: gateway RSS peak", "MB", o.rss_peak, RSS_GOAL_MB, "goal",
                    better="lower", goal=1.0, note=f"before {o.rss_before:.0f} MB"),
                Row(f"{label}: of the RSS the clients took, kept {SETTLE_SECONDS:g} s after "
                    "they left", "MB", o.rss_settled - o.rss_before,
                    o.rss_connected - o.rss_before, "taken by the connected clients",
                    better="lower", goal=KEPT_GOAL,
                    note=f"before {o.rss_before:.0f}, connected {o.rss_connected:.0f}, "
                         f"after {o.rss_settled:.0f} MB"),
            ]
            continue
        result += [
            Row(f"{label}: clients that got every event", "count", o.complete_clients,
                o.clients, "expected", goal=1.0),
            Row(f"{label}: submissions answered 202", "count", o.accepted, o.tasks,
                "expected", goal=1.0),
            Row(f"{label}: time to last delivery", "s", o.last_delivery_seconds, None,
                "-", better="lower", note=f"submissions took {o.submit_seconds:.1f} s"),
            Row(f"{label}: delivery lag p99 (event ts to client)", "s", o.lag_p99, None, "-",
                better="lower", note=f"p50 {_num(o.lag_p50)} s, max {_num(o.lag_max)} s"),
            Row(f"{label}: gateway RSS peak", "MB", o.rss_peak, RSS_GOAL_MB, "goal",
                better="lower", goal=1.0, note=f"before {o.rss_before:.0f} MB"),
            Row(f"{label}: gateway RSS {SETTLE_SECONDS:g} s after clients left", "MB",
                o.rss_settled, o.rss_before, "before the clients", better="lower",
                note=f"right after closing {o.rss_closed:.0f} MB; holds the tasks' state "
                     "and what it pins"),
        ]
    return result


def print_outcome(o: Outcome) -> None:
    print(f"{o.scenario}: {o.clients:,} clients, {o.tasks:,} tasks")
    print(f"  submissions: {o.statuses} in {o.submit_seconds:.1f} s")
    print(f"  clients with every event: {o.complete_clients:,} / {o.clients:,}; events "
          f"{o.events:,} (min per client {o.min_events:,}); out of order {o.out_of_order}; "
          f"closed by the gateway {o.closed_early}")
    last = "-" if o.last_delivery_seconds is None else f"{o.last_delivery_seconds:.1f} s"
    print(f"  time to last delivery: {last}; delivery lag p50 {_num(o.lag_p50)} s, "
          f"p99 {_num(o.lag_p99)} s, max {_num(o.lag_max)} s; "
          f"gateway CPU {o.gateway_cpu_seconds:.1f} s")
    print(f"  gateway RSS MB: before {o.rss_before:.0f}, connected {o.rss_connected:.0f}, "
          f"peak {o.rss_peak:.0f}, closed {o.rss_closed:.0f}, "
          f"+{SETTLE_SECONDS:g} s {o.rss_settled:.0f}")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _vhost_url(rabbitmq_url: str, vhost: str) -> str:
    parts = urlsplit(rabbitmq_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))


async def catalog_has(http: aiohttp.ClientSession, url: str, name: str,
                      timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with http.get(f"{url}/catalog") as resp:
            if resp.status == 200 and any(i["name"] == name
                                          for i in (await resp.json())["items"]):
                return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no worker announced {name} within {timeout}s")


async def run(args: argparse.Namespace, base: Settings, workdir: Path) -> list[Outcome]:
    vhost = f"cargo-bench-fanout-{os.getpid()}-{secrets.token_hex(3)}"
    user = urlsplit(base.rabbitmq_url).username or "guest"
    async with ManagementClient(base.management_api) as api:
        await api.create_vhost(vhost, user)
        procs: list[Proc] = []
        try:
            env = clean_env(_vhost_url(base.rabbitmq_url, vhost), CARGO_LOG_LEVEL="WARNING",
                            PYTHONUNBUFFERED="1")
            procs.append(start_worker("fanout-worker", env, workdir, concurrency=2))
            port = free_port()
            gateway = start_gateway(port, env, workdir)
            procs.append(gateway)
            url = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                await wait_ready(http, url, gateway)
                await catalog_has(http, url, TASK)
            outcomes = []
            if args.idle_clients:
                outcomes.append(await scenario("idle", "idle", args.idle_clients, 0,
                                               gateway, url, args.client_processes, workdir,
                                               args.timeout))
                print_outcome(outcomes[-1])
            if args.clients:
                outcomes.append(await scenario("per task", "task", args.clients, args.clients,
                                               gateway, url, args.client_processes, workdir,
                                               args.timeout))
                print_outcome(outcomes[-1])
            if args.all_clients:
                outcomes.append(await scenario("all", "all", args.all_clients, args.burst,
                                               gateway, url, args.client_processes, workdir,
                                               args.timeout))
                print_outcome(outcomes[-1])
            return outcomes
        finally:
            for proc in procs:
                proc.stop()
            # Shielded: a second Ctrl-C must not leave the vhost behind.
            await asyncio.shield(api.delete_vhost(vhost))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000,
                        help="clients each subscribed to its own task (0: skip)")
    parser.add_argument("--idle-clients", type=int, default=10_000,
                        help="clients subscribed to tasks never submitted, then gone "
                             "(0: skip)")
    parser.add_argument("--all-clients", type=int, default=1_000,
                        help="clients subscribed to all (0: skip)")
    parser.add_argument("--burst", type=int, default=1_000,
                        help="tasks submitted while the all clients listen")
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds the clients wait for their events")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    limit = raise_open_files_limit()  # the gateway subprocess inherits it
    most = max(args.clients, args.idle_clients, args.all_clients)
    if limit < most + 1000:
        print(f"warning: open files limit {limit} is below {most} clients",
              file=sys.stderr)
    base = load_settings()
    # Kept after the run: the gateway's and worker's logs are there.
    workdir = Path(tempfile.mkdtemp(prefix="cargo-fanout-"))
    print(f"logs in {workdir}", flush=True)
    try:
        outcomes = asyncio.run(run(args, base, workdir))
    except KeyboardInterrupt:
        print("interrupted: processes stopped, vhost deleted", file=sys.stderr)
        raise SystemExit(130) from None
    report = SectionReport("fanout", rows(outcomes), raw={
        "outcomes": [vars(o) for o in outcomes], "args": vars(args)})
    if args.json_out is not None:
        report.write(args.json_out)


if __name__ == "__main__":
    main()
