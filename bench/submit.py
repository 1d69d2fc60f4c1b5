"""Submissions per second: Cargo's gateway against the original design and the broker's ceiling.

``python -m bench.submit [--seconds N] [--concurrency C ...]`` measures, in one
run on this machine, confirmed ``POST /distance/?x=3&y=4`` submissions per second
against

* **gateway** — Cargo's aiohttp gateway, one process (``cargoctl gateway``);
* **fastapi-celery** — the original design: FastAPI with a sync endpoint calling
  Celery's ``send_task``, served by uvicorn with one process
  (``bench/peers/fastapi_celery.py``), with publisher confirms on so both answer
  only after RabbitMQ confirmed the message;
* **aio-pika-ceiling** — no HTTP at all: C concurrent aio-pika publishers, in
  this process, each publishing the gateway's message bytes for
  ``calculate_distance(3, 4)`` to the same exchange and routing key with
  ``mandatory=True`` and awaiting its confirm before the next.

Every target runs alone (never two at once), gets the same warm-up and the same
measured duration at the same concurrency, and only 202 answers (confirmed
publishes for the ceiling) count. The run uses a private vhost created through
the management API and deleted at the end, whatever happens; no consumer runs,
and the queue is purged before each measured window. Subprocesses are killed on
every way out, Ctrl-C included. Results are printed as a markdown table and
written as JSON to ``bench/results/submit-<UTC timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib.metadata
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import aio_pika
import aiohttp
import psutil
from aio_pika.abc import AbstractChannel, DeliveryMode

from bench.cpu import cpu_seconds as _cpu_seconds
from bench.cpu import find_broker_process
from bench.vhost import private_vhost
from broker.catalog import AnnouncedTask, Announcement, TaskLimits
from broker.celery_protocol import CONTENT_ENCODING, CONTENT_TYPE, encode_task
from broker.declare import declare_topology
from broker.management import ManagementClient
from broker.settings import Settings, load_settings
from broker.topology import CATALOG_EXCHANGE, TASKS_EXCHANGE, build_topology

ROOT = Path(__file__).resolve().parent.parent
LUA_SCRIPT = ROOT / "bench" / "post.lua"
RESULTS_DIR = ROOT / "bench" / "results"
PATH = "/distance/?x=3&y=4"
# Every process of the run declares the task queue with this x-max-length, so
# the declarations agree; the queue is purged between runs anyway.
QUEUE_MAX_LENGTH = 10_000_000
GOAL_VS_PEER = 4.0
GOAL_VS_CEILING = 0.8

GATEWAY = "gateway"
PEER = "fastapi-celery"
CEILING = "aio-pika-ceiling"
# Informational only (not in the ratios): the original design as it ran, without
# confirms; send_task returns once the message is in the socket buffer.
PEER_NO_CONFIRM = "fastapi-celery-noconfirm"
TARGETS = (GATEWAY, PEER, CEILING)
ALL_TARGETS = (*TARGETS, PEER_NO_CONFIRM)


@dataclass
class CpuShare:
    """CPU used during the measured window, in percent of one core."""

    server: float | None = None
    broker: float | None = None
    loadgen: float | None = None
    machine_busy: float | None = None  # all cores, percent of one core (2 cores = 200)


@dataclass
class Result:
    target: str
    concurrency: int
    seconds: float
    accepted: int  # 202 answers (confirmed publishes for the ceiling)
    rate: float  # accepted per second
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    other_statuses: dict[str, int]  # every non-202 answer, by status
    errors: dict[str, int]  # socket errors and timeouts
    queued: int | None  # messages in the queue after the window (>= accepted)
    loadgen: str
    cpu: CpuShare = field(default_factory=CpuShare)
    round: int = 1

    @property
    def non_202(self) -> int:
        return sum(self.other_statuses.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


# --------------------------------------------------------------------------- processes


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the benchmark dies (Linux only)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def server_process(cmd: list[str], env: dict[str, str], log: TextIO) -> Iterator[
        subprocess.Popen[bytes]]:
    """Start a server in its own process group; always stop it (SIGTERM, then SIGKILL)."""
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_die_with_parent)
    try:
        yield proc
    finally:
        _stop(proc)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


async def wait_http_ok(url: str, proc: subprocess.Popen[bytes], log_path: Path,
                       timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = _tail(log_path)
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{tail}")
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}: {(await resp.text())[:200]}"
            except aiohttp.ClientError as exc:
                last = str(exc) or type(exc).__name__
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:g}s (last: {last})")


# --------------------------------------------------------------------------- load generation


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds of the server, the broker, reaped children and the machine over a window."""

    def __init__(self, server: psutil.Process | None, broker: psutil.Process | None,
                 include_self: bool = False) -> None:
        self._server, self._broker, self._self = server, broker, include_self
        self._start: tuple[float | None, float | None, float, float, float] | None = None
        self._t0 = 0.0

    def _sample(self) -> tuple[float | None, float | None, float, float, float]:
        machine = psutil.cpu_times()
        busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        own = time.process_time() if self._self else 0.0
        return (_cpu_seconds(self._server), _cpu_seconds(self._broker), _children_cpu(),
                busy, own)

    def start(self) -> None:
        self._start, self._t0 = self._sample(), time.perf_counter()

    def stop(self) -> CpuShare:
        assert self._start is not None
        end, wall = self._sample(), time.perf_counter() - self._t0

        def pct(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round(100 * (b - a) / wall, 1)

        server = pct(self._start[4], end[4]) if self._self else pct(self._start[0], end[0])
        return CpuShare(server=server, broker=pct(self._start[1], end[1]),
                        loadgen=None if self._self else pct(self._start[2], end[2]),
                        machine_busy=pct(self._start[3], end[3]))


def _parse_load_json(stdout: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith("LOAD_JSON "):
            parsed: dict[str, Any] = json.loads(line[len("LOAD_JSON "):])
            return parsed
    raise RuntimeError(f"the load generator printed no LOAD_JSON line:\n{stdout[-2000:]}")


async def http_load(loadgen: str, url: str, concurrency: int, seconds: float,
                    wrk_threads: int) -> dict[str, Any]:
    if loadgen == "wrk":
        cmd = ["wrk", "-t", str(min(wrk_threads, concurrency)), "-c", str(concurrency),
               "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
               "-s", str(LUA_SCRIPT), url]
    else:
        cmd = [sys.executable, "-m", "bench.loadgen", url, "--concurrency", str(concurrency),
               "--seconds", str(seconds)]
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL, preexec_fn=_die_with_parent)
    try:
        out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}):\n{out.decode()[-2000:]}")
    return _parse_load_json(out.decode())


def _ms(micros: float | None) -> float | None:
    return None if micros is None else round(micros / 1000, 2)


# --------------------------------------------------------------------------- the broker side


async def queue_depth(channel: AbstractChannel, queue: str) -> int:
    declared = await channel.declare_queue(queue, passive=True)
    result = declared.declaration_result
    return int(result.message_count or 0)


async def purge(channel: AbstractChannel, queue: str) -> None:
    declared = await channel.declare_queue(queue, passive=True)
    await declared.purge()


async def announce_calculate_distance(channel: AbstractChannel, settings: Settings) -> None:
    """The gateway accepts only tasks a live worker announced (``broker.catalog``); no
    worker runs here, so the benchmark announces ``calculate_distance`` as one would."""
    from workers.schemas import arguments_schema
    from workers.tasks import calculate_distance

    now = datetime.now(UTC)
    task = AnnouncedTask(name="calculate_distance", queue=settings.task_queue,
                         schema=arguments_schema(calculate_distance, title="calculate_distance"),
                         limits=TaskLimits(time_limit=600, memory_limit_mb=256, max_retries=3))
    announcement = Announcement(worker="bench", vhost=settings.vhost, started_at=now,
                                announced_at=now, ttl=86_400, queues=(settings.task_queue,),
                                tasks=(task,))
    exchange = await channel.get_exchange(CATALOG_EXCHANGE, ensure=False)
    await exchange.publish(aio_pika.Message(announcement.encode(),
                                            content_type="application/json"), routing_key="")


def ceiling_message(queue: str) -> tuple[bytes, dict[str, Any], str]:
    """The gateway's message for calculate_distance(3, 4): body, headers, task id."""
    task_id = str(uuid.uuid4())
    message = encode_task(task_id, "calculate_distance", [3.0, 4.0])
    return message.body, message.headers, task_id


async def ceiling_load(channel: AbstractChannel, queue: str, concurrency: int,
                       seconds: float) -> dict[str, Any]:
    """C publishers, each publishing and awaiting its confirm, for ``seconds``."""
    body, headers, task_id = ceiling_message(queue)
    exchange = aio_pika.Exchange(channel, TASKS_EXCHANGE, passive=True)
    latencies: list[float] = []
    errors: dict[str, int] = {"nack_or_return": 0, "timeout": 0}
    started = time.perf_counter()
    deadline = started + seconds

    async def publisher() -> None:
        while time.perf_counter() < deadline:
            # A fresh Message per publish, as the gateway builds one per request.
            message = aio_pika.Message(
                body=body, headers=headers, content_type=CONTENT_TYPE,
                content_encoding=CONTENT_ENCODING, delivery_mode=DeliveryMode.PERSISTENT,
                correlation_id=task_id, message_id=task_id)
            sent = time.perf_counter()
            try:
                await exchange.publish(message, routing_key=queue, mandatory=True,
                                       timeout=10)
            except TimeoutError:
                errors["timeout"] += 1
                continue
            except Exception:
                errors["nack_or_return"] += 1
                continue
            latencies.append(time.perf_counter() - sent)

    await asyncio.gather(*(publisher() for _ in range(concurrency)))
    duration = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, round(p / 100 * (len(latencies) - 1)))] * 1e6

    return {"duration_us": duration * 1e6, "confirmed": len(latencies), "errors": errors,
            "latency_us": {"p50": pct(50), "p90": pct(90), "p99": pct(99)}}


# --------------------------------------------------------------------------- one run


@dataclass
class Run:
    settings: Settings
    env: dict[str, str]
    channel: AbstractChannel
    broker_proc: psutil.Process | None
    loadgen: str
    seconds: float
    warmup: float
    wrk_threads: int
    logdir: Path
    profile: bool = False
    gateway_cmd: str | None = None


def _server_command(target: str, port: int, gateway_cmd: str | None = None
                    ) -> tuple[list[str], str]:
    if target == GATEWAY and gateway_cmd:
        return shlex.split(gateway_cmd.format(host="127.0.0.1", port=port)), "/readyz"
    if target == GATEWAY:
        cargoctl = shutil.which("cargoctl", path=str(Path(sys.executable).parent)) or \
            shutil.which("cargoctl")
        if cargoctl is None:
            raise RuntimeError("cargoctl is not installed: pip install -e '.[bench]'")
        return [cargoctl, "gateway", "--host", "127.0.0.1", "--port", str(port)], "/readyz"
    return ([sys.executable, "-m", "uvicorn", "bench.peers.fastapi_celery:create_app",
             "--factory", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--log-level", "warning", "--no-access-log"], "/openapi.json")


def _profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or \
        shutil.which("py-spy")
    if py_spy is None:
        print("  (py-spy not installed: no profile)", file=sys.stderr)
        return None
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
         "--rate", "200", "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)


async def measure_server(run: Run, target: str, concurrency: int) -> Result:
    port = _free_port()
    cmd, ready_path = _server_command(target, port, run.gateway_cmd)
    base = f"http://127.0.0.1:{port}"
    queue = run.settings.task_queue
    log_path = run.logdir / f"{target}-c{concurrency}.log"
    env = {**run.env, "BENCH_PEER_CONFIRM": "0" if target == PEER_NO_CONFIRM else "1"}
    with log_path.open("w") as log, server_process(cmd, env, log) as proc:
        await wait_http_ok(base + ready_path, proc, log_path)
        if run.warmup > 0:
            await http_load(run.loadgen, base + PATH, concurrency, run.warmup, run.wrk_threads)
        await asyncio.sleep(0.5)  # let the warm-up's tail (queued events) settle
        await purge(run.channel, queue)
        meter = CpuMeter(psutil.Process(proc.pid), run.broker_proc)
        profiler = None
        if run.profile:
            profile_out = run.logdir / f"{target}-c{concurrency}.pyspy.txt"
            profiler = _profile(proc.pid, run.seconds, profile_out)
        meter.start()
        load = await http_load(run.loadgen, base + PATH, concurrency, run.seconds,
                               run.wrk_threads)
        cpu = meter.stop()
        if profiler is not None:
            try:
                profiler.wait(30)
            except subprocess.TimeoutExpired:
                _stop(profiler)
        await asyncio.sleep(0.5)
        queued = await queue_depth(run.channel, queue)
        if proc.poll() is not None:
            raise RuntimeError(f"{target} died during the run; see {log_path}")
    statuses = {str(k): int(v) for k, v in load["statuses"].items()}
    accepted = statuses.pop("202", 0)
    seconds = load["duration_us"] / 1e6
    errors = {k: int(v) for k, v in load["errors"].items() if k != "status" and v}
    lat = load["latency_us"]
    return Result(target=target, concurrency=concurrency, seconds=round(seconds, 3),
                  accepted=accepted, rate=round(accepted / seconds, 1),
                  p50_ms=_ms(lat["p50"]), p90_ms=_ms(lat["p90"]), p99_ms=_ms(lat["p99"]),
                  other_statuses=statuses, errors=errors, queued=queued,
                  loadgen=run.loadgen, cpu=cpu)


async def measure_ceiling(run: Run, concurrency: int) -> Result:
    queue = run.settings.task_queue
    connection = await aio_pika.connect(run.settings.rabbitmq_url,
                                        client_properties={"connection_name": "bench-ceiling"})
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        if run.warmup > 0:
            await ceiling_load(channel, queue, concurrency, run.warmup)
        await asyncio.sleep(0.5)
        await purge(run.channel, queue)
        meter = CpuMeter(None, run.broker_proc, include_self=True)
        meter.start()
        load = await ceiling_load(channel, queue, concurrency, run.seconds)
        cpu = meter.stop()
        await asyncio.sleep(0.5)
        queued = await queue_depth(run.channel, queue)
    seconds = load["duration_us"] / 1e6
    lat = load["latency_us"]
    return Result(target=CEILING, concurrency=concurrency, seconds=round(seconds, 3),
                  accepted=load["confirmed"], rate=round(load["confirmed"] / seconds, 1),
                  p50_ms=_ms(lat["p50"]), p90_ms=_ms(lat["p90"]), p99_ms=_ms(lat["p99"]),
                  other_statuses={}, errors={k: v for k, v in load["errors"].items() if v},
                  queued=queued, loadgen="in-process", cpu=cpu)


# --------------------------------------------------------------------------- report


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| target | C | round | accepted/s | p50 ms | p99 ms | 202s | non-202 | errors | queued "
        "| CPU server % | CPU broker % | CPU loadgen % | CPU machine % |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |",
    ]
    for r in results:
        non_202 = ", ".join(f"{k}: {v}" for k, v in sorted(r.other_statuses.items())) or "0"
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(r.errors.items())) or "0"
        lines.append(
            f"| {r.target} | {r.concurrency} | {r.round} | {_fmt(r.rate)} | {_fmt(r.p50_ms, 2)} "
            f"| {_fmt(r.p99_ms, 2)} | {r.accepted:,} | {non_202} | {errors} "
            f"| {'-' if r.queued is None else f'{r.queued:,}'} | {_fmt(r.cpu.server)} "
            f"| {_fmt(r.cpu.broker)} | {_fmt(r.cpu.loadgen)} | {_fmt(r.cpu.machine_busy)} |")
    return "\n".join(lines)


def median_rates(results: list[Result]) -> dict[tuple[str, int], float]:
    """Each target's median rate over the rounds, by (target, concurrency)."""
    groups: dict[tuple[str, int], list[float]] = {}
    for r in results:
        groups.setdefault((r.target, r.concurrency), []).append(r.rate)
    return {key: statistics.median(rates) for key, rates in groups.items()}


def ratios(results: list[Result]) -> list[dict[str, Any]]:
    """gateway / peer and gateway / ceiling per concurrency, from median rates."""
    medians = median_rates(results)
    out = []
    for c in sorted({r.concurrency for r in results}):
        gw = medians.get((GATEWAY, c))
        row: dict[str, Any] = {"concurrency": c}
        for other, key, goal in ((PEER, "gateway_vs_peer", GOAL_VS_PEER),
                                 (CEILING, "gateway_vs_ceiling", GOAL_VS_CEILING)):
            peer = medians.get((other, c))
            if gw is not None and peer:
                ratio = gw / peer
                row[key] = {"gateway_rate": gw, "other_rate": peer, "ratio": round(ratio, 3),
                            "goal": goal, "met": ratio >= goal}
        out.append(row)
    return out


def ratio_lines(rows: list[dict[str, Any]], rounds: int) -> str:
    rate = "median accepted/s" if rounds > 1 else "accepted/s"
    lines = [f"| C | gateway / fastapi-celery ({rate}; goal >= {GOAL_VS_PEER:g}x) "
             f"| gateway / aio-pika-ceiling ({rate}; goal >= {GOAL_VS_CEILING:g}x) |",
             "| ---: | --- | --- |"]
    for row in rows:
        cells = []
        for key in ("gateway_vs_peer", "gateway_vs_ceiling"):
            item = row.get(key)
            cells.append("-" if item is None else
                         f"{item['gateway_rate']:,.0f} / {item['other_rate']:,.0f} = "
                         f"**{item['ratio']:.2f}x** ({'met' if item['met'] else 'NOT met'})")
        lines.append(f"| {row['concurrency']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _wrk_version() -> str | None:
    if shutil.which("wrk") is None:
        return None
    proc = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first = (proc.stdout + proc.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else None


def _git_revision() -> dict[str, Any]:
    """The commit measured, and whether the measured code had local changes."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    dirty = git("status", "--porcelain", "--", "gateway", "broker", "workers", "bench")
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(dirty)}


def _uvicorn_impl() -> str:
    loop = "uvloop" if _version("uvloop") else "asyncio"
    http = "httptools" if _version("httptools") else "h11"
    return f"loop={loop} http={http}"


# --------------------------------------------------------------------------- main


def _bench_env(vhost_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "RABBITMQ_URL": vhost_url,
        "CARGO_QUEUE_MAX_LENGTH": str(QUEUE_MAX_LENGTH),
        "CARGO_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    return env


async def background_busy(seconds: float = 2.0) -> float:
    """CPU the machine spends on other work before the run, in percent of one core."""
    first = psutil.cpu_times()
    await asyncio.sleep(seconds)
    second = psutil.cpu_times()

    def busy(t: Any) -> float:
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    return round(100 * (busy(second) - busy(first)) / seconds, 1)


def choose_loadgen(requested: str) -> str:
    if requested == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("--loadgen wrk: wrk is not installed (run bench/setup.sh)")
    if requested == "auto":
        if shutil.which("wrk") is None:
            print("wrk not found (bench/setup.sh installs it): using the aiohttp load "
                  "generator, which takes more CPU from the servers", file=sys.stderr)
            return "aiohttp"
        return "wrk"
    return requested


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    loadgen = choose_loadgen(args.loadgen)
    base = load_settings()
    background = await background_busy()
    if background > 20:
        print(f"warning: the machine is already {background:.0f}% busy (of one core) before "
              f"the run: figures will be noisy", file=sys.stderr)
    with private_vhost("cargo-bench") as vhost_settings:
        env = _bench_env(vhost_settings.rabbitmq_url)
        settings = load_settings(env)
        topology = build_topology(settings)
        logdir = Path(tempfile.mkdtemp(prefix="cargo-bench-"))
        print(f"vhost {settings.vhost}; server logs in {logdir}; load generator {loadgen}; "
              f"{args.seconds:g}s per target after {args.warmup:g}s warm-up", file=sys.stderr)
        connection = await aio_pika.connect(settings.rabbitmq_url,
                                            client_properties={"connection_name": "bench"})
        async with connection:
            channel = await connection.channel()
            await declare_topology(channel, topology)
            await announce_calculate_distance(channel, settings)
            run = Run(settings=settings, env=env, channel=channel,
                      broker_proc=find_broker_process(settings.rabbitmq_url), loadgen=loadgen,
                      seconds=args.seconds, warmup=args.warmup, wrk_threads=args.wrk_threads,
                      logdir=logdir, profile=args.profile, gateway_cmd=args.gateway_cmd)
            results: list[Result] = []
            for round_no in range(1, args.rounds + 1):
                for concurrency in args.concurrency:
                    for target in args.targets:
                        print(f"  round {round_no}: {target} at concurrency {concurrency} ...",
                              file=sys.stderr)
                        if target == CEILING:
                            result = await measure_ceiling(run, concurrency)
                        else:
                            result = await measure_server(run, target, concurrency)
                        result.round = round_no
                        print(f"    {result.rate:,.1f}/s", file=sys.stderr)
                        results.append(result)
            async with ManagementClient(base.management_api) as api:
                overview = await api.overview()
    return {
        "command": shlex.join(["python", "-m", "bench.submit", *sys.argv[1:]]),
        "started_at": args.started_at,
        "git": _git_revision(),
        "machine": {
            "cpus": os.cpu_count(), "cpu_model": _cpu_model(),
            "python": platform.python_version(), "platform": platform.platform(),
            "rabbitmq": overview.get("rabbitmq_version"),
            "erlang": overview.get("erlang_version"),
        },
        "versions": {d: _version(d) for d in ("aiohttp", "aio-pika", "aiormq", "fastapi",
                                              "uvicorn", "celery", "kombu", "amqp")},
        "setup": {
            "seconds": args.seconds, "warmup": args.warmup, "loadgen": loadgen,
            "wrk": _wrk_version() if loadgen == "wrk" else None,
            "wrk_threads": args.wrk_threads if loadgen == "wrk" else None,
            "path": PATH, "queue_max_length": QUEUE_MAX_LENGTH, "rounds": args.rounds,
            "background_busy_pct_before": background,
            "peer": "FastAPI sync def endpoint -> Celery send_task, publisher confirms on "
                    "(confirm_publish), uvicorn --workers 1 " + _uvicorn_impl(),
            "gateway": args.gateway_cmd or "cargoctl gateway (aiohttp, one process)",
            "ceiling": "aio-pika, C publishers awaiting confirms, mandatory=True, in-process",
        },
        "results": [asdict(r) for r in results],
        "ratios": ratios(results),
    }


def render(report: dict[str, Any]) -> str:
    results = [Result(**{**r, "cpu": CpuShare(**r["cpu"])}) for r in report["results"]]
    setup = report["setup"]
    machine = report["machine"]
    return "\n".join([
        f"`{report['command']}` — {report['started_at']}, {machine['cpus']} x "
        f"{machine['cpu_model']}, RabbitMQ {machine['rabbitmq']}, Python {machine['python']}; "
        f"{setup['seconds']:g}s per target after {setup['warmup']:g}s warm-up, "
        f"load generator {setup['wrk'] or setup['loadgen']}; "
        f"{setup['rounds']} round(s); machine busy before the run: "
        f"{setup['background_busy_pct_before']:g}% of one core.",
        "",
        "gateway, fastapi-celery and aio-pika-ceiling count a submission only once RabbitMQ "
        "confirmed it (the peer runs Celery with confirm_publish=True), all into the same "
        "quorum queue; only 202s count. "
        + (f"{PEER_NO_CONFIRM} is the same peer without confirms, for information only."
           if any(r.target == PEER_NO_CONFIRM for r in results) else ""),
        "",
        markdown_table(results),
        "",
        ratio_lines(report["ratios"], setup["rounds"]),
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.submit",
        description="POST /distance/ submissions per second: Cargo's gateway vs FastAPI+Celery "
                    "vs raw aio-pika confirmed publishes")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="measured seconds per target (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="warm-up seconds per target, not counted (default 3)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64],
                        help="requests (publishes) in flight; several values run in turn "
                             "(default 64)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every target this many times, interleaved; ratios use "
                             "each target's median (default 1)")
    parser.add_argument("--targets", nargs="+", choices=ALL_TARGETS, default=list(TARGETS),
                        help=f"which targets to run (default: {' '.join(TARGETS)}; "
                             f"{PEER_NO_CONFIRM} is the peer without publisher confirms, "
                             f"for information)")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "aiohttp"), default="auto",
                        help="HTTP load generator (auto: wrk if installed)")
    parser.add_argument("--wrk-threads", type=int, default=1,
                        help="wrk threads (default 1: leaves the cores to the servers)")
    parser.add_argument("--profile", action="store_true",
                        help="sample each server with py-spy during its window "
                             "(raw stacks next to the server logs)")
    parser.add_argument("--gateway-cmd", default=None, metavar="CMD",
                        help="run this instead of `cargoctl gateway` (to compare gateway "
                             "variants); {host} and {port} are filled in, /readyz must answer")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR,
                        help="directory for the JSON result (default bench/results)")
    parser.add_argument("--no-save", action="store_true", help="do not write the JSON result")
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.warmup < 0 or min(args.concurrency) < 1 or args.rounds < 1:
        parser.error("need --seconds >= 1, --warmup >= 0, --concurrency >= 1, --rounds >= 1")
    args.started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return args


def _raise_on_sigterm() -> Callable[[], None]:
    task = asyncio.current_task()
    assert task is not None

    def handler() -> None:
        task.cancel()

    return handler


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, _raise_on_sigterm())
    return await bench(args)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        report = asyncio.run(_main(args))
    except KeyboardInterrupt:
        print("interrupted: servers stopped, vhost deleted", file=sys.stderr)
        raise SystemExit(130) from None
    except asyncio.CancelledError:
        print("terminated: servers stopped, vhost deleted", file=sys.stderr)
        raise SystemExit(143) from None
    print(render(report))
    if not args.no_save:
        args.output.mkdir(parents=True, exist_ok=True)
        stamp = args.started_at.replace("-", "").replace(":", "")
        path = args.output / f"submit-{stamp}.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwritten to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
