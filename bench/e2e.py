"""The worker path end to end: Cargo's REST → worker → WebSocket against bare Celery over rpc://.

``python -m bench.e2e [--tasks N] [--clients K] [--concurrency C] [--rounds R]
[--latency-tasks M] [--quick] [--json-out PATH]`` measures, in one run on one
private vhost, three of issue 13's sections side by side with their peer:

* **End to end** — a real ``cargoctl gateway`` and ``cargoctl worker
  --concurrency C``; a WebSocket subscribed to ``all`` is open before the first
  submission; K aiohttp clients submit N ``POST /distance/?x=3&y=4``; tasks/s =
  accepted / (first submit → last terminal event seen on the WebSocket). Peer
  (``bench/peers/celery_rpc.py``): N ``delay()`` in a burst, then ``get()`` on
  each over ``rpc://``, with ``celery worker -c C -P prefork`` on a quorum
  queue (late acks, prefetch 1, publisher confirms). Goal ≥ 1.0x.
* **Latency** — one task at a time: REST submit → ``succeeded`` on the already
  open WebSocket, against ``delay().get()``; p50 (goal ≤ 1.0x) and p99
  (goal ≤ 1.5x) over M tasks after a warm-up.
* **CPU per task** — over each end-to-end window, psutil CPU deltas of
  RabbitMQ (``beam.smp``), the worker's process tree, and the gateway (Cargo)
  or the producer, this process (peer), divided by the tasks. Goal for the
  total ≤ 1.5x; the components are informational rows.

Both sides' processes run for the whole section, each idle while the other is
measured; the sides alternate within every round (odd rounds Cargo first) and
the rows are medians over rounds. The private vhost is deleted and every
process stopped on every way out (errors, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import importlib.metadata
import json
import os
import platform
import queue
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import celery
import psutil

from bench.cpu import CpuMeter, CpuWindow, find_broker_process, own_cpu_seconds, tree_cpu_seconds
from bench.peers.celery_rpc import QUEUE, TASK_NAME, URL_VARIABLE, create_app
from bench.procs import BIN, Proc, free_port, start_gateway, start_worker, wait_ready
from bench.sections import Row, SectionReport, markdown_table
from bench.stats import median_or_none, percentile
from bench.vhost import private_vhost, process_env
from broker.events import TERMINAL_STATES
from broker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SUBMIT_PATH = "/distance/?x=3&y=4"
TERMINAL = frozenset(state.value for state in TERMINAL_STATES)
CARGO, PEER = "cargo", "peer"
PEER_E2E = "Celery delay() burst + get() over rpc://"
PEER_LATENCY = "Celery delay().get() over rpc://"
PEER_CPU = "bare Celery, quorum queue, rpc://"
# How long a phase may take before the run is declared stuck (plus a per-task allowance).
PHASE_TIMEOUT = 120.0
T = TypeVar("T")


# --------------------------------------------------------------------------- Cargo's side


class TerminalEvents:
    """A WebSocket subscribed to ``all``: when each task's terminal event arrived here.

    Arrival times are taken as frames are read (``perf_counter``), so a terminal
    event that comes before the submission's own 202 is not missed.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self.arrived: dict[str, tuple[float, str]] = {}
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self._pending: set[str] | None = None
        self._all_arrived = asyncio.Event()
        self.closed: str | None = None
        self.frames = 0

    def reset(self) -> None:
        self.arrived.clear()
        self._pending = None
        self._all_arrived.clear()

    async def read(self) -> None:
        try:
            async for message in self._ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                self.frames += 1
                frame = json.loads(message.data)
                if frame.get("type") != "event" or frame.get("state") not in TERMINAL:
                    continue
                self._arrive(frame["task_id"], frame["state"], time.perf_counter())
        finally:
            self.closed = f"the WebSocket closed ({self._ws.close_code}, {self._ws.exception()})"
            for waiter in self._waiters.values():
                if not waiter.done():
                    waiter.set_exception(RuntimeError(self.closed))
            self._all_arrived.set()

    def _arrive(self, task_id: str, state: str, at: float) -> None:
        self.arrived.setdefault(task_id, (at, state))
        waiter = self._waiters.pop(task_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(at)
        if self._pending is not None:
            self._pending.discard(task_id)
            if not self._pending:
                self._all_arrived.set()

    async def wait_all(self, task_ids: list[str], timeout: float) -> float:
        """Until every task's terminal event arrived; the last arrival's time."""
        self._pending = {i for i in task_ids if i not in self.arrived}
        if self._pending:
            try:
                await asyncio.wait_for(self._all_arrived.wait(), timeout)
            except TimeoutError:
                raise RuntimeError(f"{len(self._pending)} of {len(task_ids)} tasks had no "
                                   f"terminal event after {timeout:.0f}s") from None
        if self.closed and self._pending:
            raise RuntimeError(self.closed)
        return max(self.arrived[i][0] for i in task_ids)

    async def wait_for(self, task_id: str, timeout: float) -> float:
        if task_id in self.arrived:
            return self.arrived[task_id][0]
        if self.closed:
            raise RuntimeError(self.closed)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[task_id] = waiter
        try:
            return await asyncio.wait_for(waiter, timeout)
        finally:
            self._waiters.pop(task_id, None)


@dataclass
class CargoSide:
    url: str
    http: aiohttp.ClientSession
    events: TerminalEvents
    gateway: Proc
    worker: Proc

    async def submit(self) -> str | int:
        """One submission: its task id, or the HTTP status when it was not 202."""
        async with self.http.post(self.url + SUBMIT_PATH) as resp:
            if resp.status != 202:
                await resp.read()
                return resp.status
            body = await resp.json()
            task_id: str = body["task_id"]
            return task_id

    async def burst(self, n: int, clients: int) -> tuple[list[str], dict[str, int]]:
        """N submissions from K concurrent clients: accepted ids, refusals by status."""
        ids: list[str] = []
        refused: collections.Counter[str] = collections.Counter()
        remaining = n

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                outcome = await self.submit()
                if isinstance(outcome, str):
                    ids.append(outcome)
                else:
                    refused[str(outcome)] += 1

        await asyncio.gather(*(client() for _ in range(clients)))
        return ids, dict(refused)

    def cpu_meter(self, broker: psutil.Process | None) -> CpuMeter:
        return CpuMeter({
            "rabbitmq": lambda: _cpu_of(broker),
            "worker": lambda: tree_cpu_seconds(self.worker.popen.pid),
            "gateway": lambda: tree_cpu_seconds(self.gateway.popen.pid),
            "clients": own_cpu_seconds,  # this process: the HTTP and WebSocket clients
        })


def _cpu_of(proc: psutil.Process | None) -> float | None:
    return None if proc is None else tree_cpu_seconds(proc.pid)


async def background(broker: psutil.Process | None, seconds: float = 1.0) -> dict[str, Any]:
    """What RabbitMQ and the machine do with neither side loaded (other people's work on
    the shared broker and cores), just before a window: its CPU lands in the window too."""
    meter = CpuMeter({"rabbitmq": lambda: _cpu_of(broker)})
    meter.start()
    await asyncio.sleep(seconds)
    window = meter.stop()
    rabbit = window.seconds["rabbitmq"]
    return {"rabbitmq_pct": None if rabbit is None else 100 * rabbit / window.wall,
            "machine_busy_pct": 100 * window.machine / window.wall}


async def cargo_end_to_end(side: CargoSide, n: int, clients: int,
                           broker: psutil.Process | None) -> dict[str, Any]:
    side.events.reset()
    idle = await background(broker)
    meter = side.cpu_meter(broker)
    meter.start()
    started = time.perf_counter()
    ids, refused = await side.burst(n, clients)
    if not ids:
        raise RuntimeError(f"no submission was accepted: {refused}")
    last = await side.events.wait_all(ids, PHASE_TIMEOUT + n / 50)
    window = meter.stop()
    after = await background(broker)
    states = collections.Counter(side.events.arrived[i][1] for i in ids)
    return {"tasks": len(ids), "refused": refused, "seconds": last - started,
            "rate": len(ids) / (last - started), "terminal_states": dict(states),
            "background_before": idle, "background_after": after,
            "cpu": cpu_doc(window, len(ids), total_of=("rabbitmq", "worker", "gateway"),
                           rabbitmq_background=(idle, after))}


async def cargo_latencies(side: CargoSide, m: int) -> list[float]:
    """M tasks one at a time: submit → ``succeeded`` on the open WebSocket, in ms."""
    side.events.reset()
    latencies: list[float] = []
    for _ in range(m):
        started = time.perf_counter()
        outcome = await side.submit()
        if not isinstance(outcome, str):
            raise RuntimeError(f"a latency submission was refused: HTTP {outcome}")
        arrived = await side.events.wait_for(outcome, PHASE_TIMEOUT)
        state = side.events.arrived[outcome][1]
        if state != "succeeded":
            raise RuntimeError(f"task {outcome} ended {state}, not succeeded")
        latencies.append(1000 * (arrived - started))
    return latencies


# --------------------------------------------------------------------------- the peer


class DaemonThread:
    """One daemon thread that runs every blocking peer call, in turn.

    One thread, always the same: Celery's ``rpc://`` backend is per thread (its
    reply queue is named after the thread), so results of calls made from another
    thread never reach ``get()``. A daemon: a Ctrl-C does not wait for a burst to
    finish, as it would for ``asyncio.to_thread``'s executor.
    """

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="bench-peer", daemon=True).start()

    def _serve(self) -> None:
        while True:
            self._calls.get()()

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(result: T | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]

        def call() -> None:
            try:
                result = fn()
            except BaseException as exc:  # handed to the awaiting coroutine
                loop.call_soon_threadsafe(settle, None, exc)
            else:
                loop.call_soon_threadsafe(settle, result, None)

        self._calls.put(call)
        return future


@dataclass
class PeerSide:
    app: celery.Celery
    worker: Proc
    thread: DaemonThread

    @property
    def task(self) -> Any:
        return self.app.tasks[TASK_NAME]

    def burst(self, n: int) -> tuple[float, float]:
        """N ``delay()`` in a burst, then ``get()`` on each: (first delay, last get) times."""
        task = self.task
        started = time.perf_counter()
        results = [task.delay(3, 4) for _ in range(n)]
        for result in results:
            result.get(timeout=PHASE_TIMEOUT)
        return started, time.perf_counter()

    def latencies(self, m: int) -> list[float]:
        task = self.task
        latencies: list[float] = []
        for _ in range(m):
            started = time.perf_counter()
            task.delay(3, 4).get(timeout=PHASE_TIMEOUT)
            latencies.append(1000 * (time.perf_counter() - started))
        return latencies

    def cpu_meter(self, broker: psutil.Process | None) -> CpuMeter:
        return CpuMeter({
            "rabbitmq": lambda: _cpu_of(broker),
            "worker": lambda: tree_cpu_seconds(self.worker.popen.pid),
            "producer": own_cpu_seconds,  # this process: delay() and get()
        })


async def peer_end_to_end(side: PeerSide, n: int, broker: psutil.Process | None
                          ) -> dict[str, Any]:
    idle = await background(broker)
    meter = side.cpu_meter(broker)
    meter.start()
    started, last = await side.thread.run(lambda: side.burst(n))
    window = meter.stop()
    after = await background(broker)
    return {"tasks": n, "seconds": last - started, "rate": n / (last - started),
            "background_before": idle, "background_after": after,
            "cpu": cpu_doc(window, n, total_of=("rabbitmq", "worker", "producer"),
                           rabbitmq_background=(idle, after))}


def cpu_doc(window: CpuWindow, tasks: int, total_of: tuple[str, ...],
            rabbitmq_background: tuple[dict[str, Any], dict[str, Any]] | None = None
            ) -> dict[str, Any]:
    """CPU per task in ms, by component and in total (of ``total_of``).

    ``rabbitmq_background``: RabbitMQ's load just before and just after the window,
    with neither side loaded (other sessions share the broker). Their mean, over
    the window's wall time, is taken off RabbitMQ's CPU as ``rabbitmq_less_background``
    (an estimate: that load need not have been steady).
    """
    per_task = {name: None if sec is None else 1000 * sec / tasks
                for name, sec in window.seconds.items()}
    rabbit = window.seconds.get("rabbitmq")
    if rabbitmq_background is not None and rabbit is not None:
        rates = [b["rabbitmq_pct"] for b in rabbitmq_background
                 if b.get("rabbitmq_pct") is not None]
        if len(rates) == len(rabbitmq_background):
            others = statistics.fmean(rates) / 100 * window.wall
            per_task["rabbitmq_less_background"] = 1000 * (rabbit - others) / tasks
    parts = [per_task[name] for name in total_of]
    total = None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
    return {"ms_per_task": per_task, "total_ms_per_task": total, "total_of": list(total_of),
            "seconds": window.seconds, "wall": window.wall,
            "machine_busy_ms_per_task": 1000 * window.machine / tasks,
            "machine_busy_pct": 100 * window.machine / window.wall if window.wall else None}


# --------------------------------------------------------------------------- the run


@dataclass
class Config:
    tasks: int
    clients: int
    concurrency: int
    rounds: int
    latency_tasks: int
    warmup_tasks: int
    latency_warmup: int
    # Before each measured phase, wait (at most quiet_wait s) until the machine, with
    # neither side loaded, is below quiet_pct % of one core busy: other sessions share it.
    quiet_pct: float = 0.0
    quiet_wait: float = 0.0


@dataclass
class Rounds:
    end_to_end: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {CARGO: [], PEER: []})
    latency: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {CARGO: [], PEER: []})


async def wait_for_task_catalog(http: aiohttp.ClientSession, url: str, proc: Proc,
                                timeout: float = 60) -> None:
    """Until the worker's announcement of ``calculate_distance`` reached the gateway."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited; see {proc.log_path}")
        async with http.get(f"{url}/catalog") as resp:
            if resp.status == 200:
                items = (await resp.json()).get("items", [])
                if any(item.get("name") == "calculate_distance" for item in items):
                    return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"calculate_distance not in the catalog after {timeout}s")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def measure(config: Config, settings: Settings, log_dir: Path,
                  procs: list[Proc]) -> tuple[Rounds, dict[str, Any]]:
    env = process_env(settings,
                      # A subscriber to `all` gets three events per task; the bound only
                      # decides when a slow client is cut off, so a burst must not hit it.
                      CARGO_WS_SEND_QUEUE=str(max(1000, 4 * config.tasks)))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = start_gateway(port, env, log_dir)
    procs.append(gateway)
    worker = start_worker("e2e-worker", env, log_dir, config.concurrency)
    procs.append(worker)
    peer_env = process_env(settings, **{URL_VARIABLE: settings.rabbitmq_url})
    peer_worker = Proc("peer-worker", [
        str(BIN / "celery"), "-A", "bench.peers.celery_rpc:app", "worker",
        "-c", str(config.concurrency), "-P", "prefork", "-Q", QUEUE, "-l", "warning",
        "-n", f"bench-peer-{os.getpid()}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat"], peer_env, log_dir)
    procs.append(peer_worker)
    broker = find_broker_process(settings.rabbitmq_url)
    if broker is None:
        log("warning: RabbitMQ's beam.smp not found on this machine: no broker CPU")
    peer_app = create_app(settings)
    connector = aiohttp.TCPConnector(limit=config.clients + 8)
    async with aiohttp.ClientSession(connector=connector) as http:
        await wait_ready(http, url, gateway)
        await wait_for_task_catalog(http, url, worker)
        async with http.ws_connect(f"{url}/ws", max_msg_size=0) as ws:
            await ws.send_json({"op": "subscribe", "all": True})
            reply = await ws.receive_json(timeout=10)
            if reply.get("type") != "subscribed":
                raise RuntimeError(f"subscribing to all: {reply}")
            events = TerminalEvents(ws)
            reader = asyncio.create_task(events.read())
            try:
                cargo = CargoSide(url, http, events, gateway, worker)
                peer = PeerSide(peer_app, peer_worker, DaemonThread())
                rounds = await run_rounds(config, cargo, peer, broker)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
    with contextlib.suppress(Exception):
        peer_app.close()
    for proc in (gateway, worker, peer_worker):
        if not proc.alive():
            raise RuntimeError(f"{proc.name} died during the run; see {proc.log_path}")
    return rounds, {"broker_found": broker is not None, "ws_frames": events.frames}


async def until_quiet(config: Config, broker: psutil.Process | None) -> dict[str, Any]:
    """Wait for the machine to be quiet enough (bounded); how long it took and how busy."""
    started = time.monotonic()
    while True:
        seen = await background(broker)
        waited = time.monotonic() - started
        if (config.quiet_pct <= 0 or seen["machine_busy_pct"] <= config.quiet_pct
                or waited >= config.quiet_wait):
            quiet = config.quiet_pct <= 0 or seen["machine_busy_pct"] <= config.quiet_pct
            if not quiet:
                log(f"  the machine stayed {seen['machine_busy_pct']:.0f}% busy for "
                    f"{waited:.0f}s: measuring anyway")
            return {"waited_s": waited, "quiet": quiet, **seen}
        await asyncio.sleep(1.0)


async def run_rounds(config: Config, cargo: CargoSide, peer: PeerSide,
                     broker: psutil.Process | None) -> Rounds:
    log(f"warm-up: {config.warmup_tasks} tasks each side (the peer's worker answering "
        f"its first task proves it ready)")
    await cargo_end_to_end(cargo, config.warmup_tasks, config.clients, broker)
    await peer_end_to_end(peer, config.warmup_tasks, broker)
    rounds = Rounds()
    for number in range(1, config.rounds + 1):
        order = (CARGO, PEER) if number % 2 else (PEER, CARGO)
        for side in order:
            wait = await until_quiet(config, broker)
            if side == CARGO:
                result = await cargo_end_to_end(cargo, config.tasks, config.clients, broker)
            else:
                result = await peer_end_to_end(peer, config.tasks, broker)
            result["quiet_wait"] = wait
            rounds.end_to_end[side].append(result)
            log(f"round {number}: {side} end to end {result['rate']:,.0f} tasks/s, "
                f"CPU {_ms(result['cpu']['total_ms_per_task'])} ms/task (machine busy "
                f"{result['cpu']['machine_busy_pct']:.0f}% of one core; before it, with "
                f"neither side loaded, {result['background_before']['machine_busy_pct']:.0f}%)"
                + (f", refused {result['refused']}" if result.get("refused") else ""))
        for side in order:
            wait = await until_quiet(config, broker)
            if side == CARGO:
                await cargo_latencies(cargo, config.latency_warmup)
                samples = await cargo_latencies(cargo, config.latency_tasks)
            else:
                await peer.thread.run(lambda: peer.latencies(config.latency_warmup))
                samples = await peer.thread.run(lambda: peer.latencies(config.latency_tasks))
            result = {**latency_doc(samples), "quiet_wait": wait}
            rounds.latency[side].append(result)
            log(f"round {number}: {side} latency p50 {result['p50']:.2f} ms, "
                f"p99 {result['p99']:.2f} ms")
    return rounds


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def latency_doc(samples: list[float]) -> dict[str, Any]:
    return {"tasks": len(samples), "p50": percentile(samples, 50),
            "p90": percentile(samples, 90), "p99": percentile(samples, 99),
            "max": max(samples), "mean": statistics.fmean(samples)}


# --------------------------------------------------------------------------- the report


def rows_from(rounds: Rounds, config: Config) -> list[Row]:
    """Medians over rounds, Cargo beside the peer."""
    def med(side: str, pick: Callable[[dict[str, Any]], float | None],
            kind: str = "end_to_end") -> float | None:
        return median_or_none([pick(r) for r in getattr(rounds, kind)[side]])

    def cpu(side: str, component: str) -> float | None:
        return med(side, lambda r: r["cpu"]["ms_per_task"].get(component))

    size = f"N={config.tasks}, C={config.concurrency}"
    rows = [
        Row(f"end to end, tasks/s ({size}, {config.clients} HTTP clients -> WebSocket)",
            "tasks/s", med(CARGO, lambda r: r["rate"]), med(PEER, lambda r: r["rate"]),
            PEER_E2E, "higher", 1.0),
        Row(f"latency p50, one task at a time ({config.latency_tasks} tasks)", "ms",
            med(CARGO, lambda r: r["p50"], "latency"), med(PEER, lambda r: r["p50"], "latency"),
            PEER_LATENCY, "lower", 1.0),
        Row(f"latency p99, one task at a time ({config.latency_tasks} tasks)", "ms",
            med(CARGO, lambda r: r["p99"], "latency"), med(PEER, lambda r: r["p99"], "latency"),
            PEER_LATENCY, "lower", 1.5),
        Row("CPU per task end to end, total (broker + worker + gateway/producer)",
            "ms CPU/task", med(CARGO, lambda r: r["cpu"]["total_ms_per_task"]),
            med(PEER, lambda r: r["cpu"]["total_ms_per_task"]), PEER_CPU, "lower", 1.5),
        Row("CPU per task: RabbitMQ (beam.smp)", "ms CPU/task", cpu(CARGO, "rabbitmq"),
            cpu(PEER, "rabbitmq"), PEER_CPU, "lower"),
        Row("CPU per task: RabbitMQ less its load just before and after the window "
            "(other sessions' work; an estimate)", "ms CPU/task",
            cpu(CARGO, "rabbitmq_less_background"), cpu(PEER, "rabbitmq_less_background"),
            PEER_CPU, "lower"),
        Row("CPU per task: worker process tree", "ms CPU/task", cpu(CARGO, "worker"),
            cpu(PEER, "worker"), PEER_CPU, "lower"),
        Row("CPU per task: gateway (Cargo) / producer delay()+get() (peer)", "ms CPU/task",
            cpu(CARGO, "gateway"), cpu(PEER, "producer"), PEER_CPU, "lower"),
        Row("CPU per task: the benchmark's HTTP + WebSocket clients (not in the total)",
            "ms CPU/task", cpu(CARGO, "clients"), None, "-", "lower",
            note="Cargo only: the peer's producer is counted above"),
    ]
    return rows


def per_round_ratios(rounds: Rounds) -> dict[str, list[float | None]]:
    """Cargo / peer within each round: the two sides ran back to back, so other work on
    the machine skews a round's ratio less than it skews the medians of each side."""
    def ratios(kind: str, key: Callable[[dict[str, Any]], float | None]
               ) -> list[float | None]:
        pairs = zip(getattr(rounds, kind)[CARGO], getattr(rounds, kind)[PEER], strict=False)
        out: list[float | None] = []
        for cargo, peer in pairs:
            a, b = key(cargo), key(peer)
            out.append(None if a is None or not b else a / b)
        return out

    return {"end_to_end_rate": ratios("end_to_end", lambda r: r["rate"]),
            "cpu_total": ratios("end_to_end", lambda r: r["cpu"]["total_ms_per_task"]),
            "latency_p50": ratios("latency", lambda r: r["p50"]),
            "latency_p99": ratios("latency", lambda r: r["p99"])}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    dirty = git("status", "--porcelain", "--", "gateway", "broker", "workers", "bench")
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(dirty)}


def parse_args(argv: list[str] | None = None) -> tuple[Config, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.e2e",
        description="Cargo's worker path end to end, latency and CPU per task, against "
                    "bare Celery over rpc://, side by side")
    parser.add_argument("--tasks", type=int, default=5000, help="N per end-to-end round")
    parser.add_argument("--clients", type=int, default=64, help="K concurrent HTTP clients")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="C worker processes, both sides (default 2)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds; rows are medians (default 3)")
    parser.add_argument("--latency-tasks", type=int, default=500,
                        help="M one-at-a-time tasks per latency round (default 500)")
    parser.add_argument("--quiet-pct", type=float, default=60.0,
                        help="before each measured phase, wait until the machine is at "
                             "most this busy (%% of one core) with neither side loaded; "
                             "0: do not wait (default 60)")
    parser.add_argument("--quiet-wait", type=float, default=90.0,
                        help="the longest wait for that, in seconds; then measure anyway "
                             "(default 90)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: N=300, M=50, one round")
    parser.add_argument("--json-out", type=Path, default=None,
                        help="write the SectionReport here (bench.sections)")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.latency_tasks, args.rounds, args.quiet_pct = 300, 50, 1, 0
    if min(args.tasks, args.clients, args.concurrency, args.rounds, args.latency_tasks) < 1:
        parser.error("every count must be >= 1")
    config = Config(tasks=args.tasks, clients=args.clients, concurrency=args.concurrency,
                    rounds=args.rounds, latency_tasks=args.latency_tasks,
                    warmup_tasks=min(200, args.tasks), latency_warmup=20,
                    quiet_pct=args.quiet_pct, quiet_wait=args.quiet_wait)
    return config, args


def main(argv: list[str] | None = None) -> None:
    config, args = parse_args(argv)
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    log_dir = Path(tempfile.mkdtemp(prefix="cargo-bench-e2e-"))
    procs: list[Proc] = []
    try:
        with private_vhost("cargo-bench-e2e") as settings:
            log(f"vhost {settings.vhost}; process logs in {log_dir}; {asdict(config)}")
            try:
                rounds, extra = asyncio.run(measure(config, settings, log_dir, procs))
            finally:
                for proc in procs:  # before the vhost goes: no worker reconnect storm
                    proc.stop()
    except KeyboardInterrupt:
        log("interrupted: processes stopped, vhost deleted")
        raise SystemExit(130) from None
    report = SectionReport("e2e", rows_from(rounds, config), raw={
        "command": shlex.join(["python", "-m", "bench.e2e", *(argv or sys.argv[1:])]),
        "started_at": started_at, "config": asdict(config), "git": _git_commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "versions": {d: _version(d) for d in ("celery", "kombu", "aiohttp", "aio-pika")},
        "peer": "bench/peers/celery_rpc.py: celery worker -c C -P prefork, the bare app "
                "(bench/peers/celery_bare.py: quorum queue with Cargo's task-queue "
                "arguments, acks_late, prefetch 1, confirm_publish) + rpc:// results",
        "logs": str(log_dir), **extra,
        "end_to_end": rounds.end_to_end, "latency": rounds.latency,
        "per_round_ratios": per_round_ratios(rounds)})
    print(markdown_table(report.rows))
    if args.json_out is not None:
        report.write(args.json_out)
        log(f"written to {args.json_out}")


if __name__ == "__main__":
    main()
