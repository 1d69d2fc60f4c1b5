"""The floor under Cargo's one-at-a-time latency: the design's hops with none of Cargo's code.

Issue 13's latency goal compares REST submit -> ``succeeded`` on a WebSocket with a
Celery client calling ``delay().get()`` over ``rpc://``. Cargo's shape puts more
hops on that path than the peer has: an HTTP request into a gateway process, a
confirmed outcome written to a stream (delivered to readers once committed),
and a WebSocket frame out of the gateway. This experiment measures, in one run
and one task at a time, three sides with the same two worker processes:

- **peer**: ``delay().get()`` over ``rpc://`` (``bench.peers.celery_rpc``, on a
  queue of its own);
- **floor**: the design's hops and nothing else. A bare aiohttp process (this
  module, ``--serve PORT``) takes ``POST /t``, publishes a Celery message with
  confirms to the bare queue and answers 202; the worker is
  ``bench.peers.celery_outcomes`` (bare Celery writing one confirmed outcome per
  task to a stream before its late ack); the same aiohttp process reads that
  stream and writes each outcome to its WebSocket clients;
- **cargo**: ``cargoctl gateway`` + ``cargoctl worker`` (``bench.e2e``'s side).

Rows: the floor against the peer (what the design's hops cost), Cargo against
the floor (what Cargo's own code costs on top), p50 and p99, informational; the
goal row stays in ``bench.e2e``.

    .venv/bin/python -m bench.latency_floor --tasks 400 --rounds 3
    .venv/bin/python -m bench.latency_floor --json-out /tmp/floor.json   # for bench.pipeline
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import aiohttp
from aiohttp import web

from bench import e2e
from bench.depth import consumers
from bench.peers import celery_bare, celery_outcomes, celery_rpc
from bench.procs import BIN, Proc, free_port, start_gateway, start_worker
from bench.sections import Row, SectionReport
from bench.stats import percentile
from bench.vhost import private_vhost, process_env
from broker.celery_protocol import encode_task
from broker.settings import load_settings

RESULTS = Path(__file__).resolve().parent / "results"
CLIENTS = web.AppKey("clients", set[web.WebSocketResponse])
CHANNEL: web.AppKey[aio_pika.abc.AbstractChannel] = web.AppKey(
    "channel", aio_pika.abc.AbstractChannel)


# --------------------------------------------------------------------------- the floor's gateway


async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
    url = load_settings().rabbitmq_url
    publishing = await aio_pika.connect(url)
    reading = await aio_pika.connect(url)
    app[CHANNEL] = await publishing.channel(publisher_confirms=True)
    reader = await reading.channel()
    await reader.set_qos(prefetch_count=100)
    stream = await reader.declare_queue(celery_outcomes.OUTCOME_STREAM, durable=True,
                                        arguments={"x-queue-type": "stream"})

    clients = app[CLIENTS]

    async def forward(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        for ws in tuple(clients):
            await ws.send_bytes(message.body)
        await message.ack()

    await stream.consume(forward, arguments={"x-stream-offset": "next"})
    yield
    await reading.close()
    await publishing.close()


async def submit(request: web.Request) -> web.Response:
    task_id = str(uuid.uuid4())
    task = encode_task(task_id, celery_bare.TASK_NAME, [3, 4])
    await request.app[CHANNEL].default_exchange.publish(
        aio_pika.Message(task.body, headers=task.headers, content_type="application/json",
                         content_encoding="utf-8", correlation_id=task_id,
                         delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key=celery_bare.QUEUE)
    return web.json_response({"task_id": task_id}, status=202)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    request.app[CLIENTS].add(ws)
    try:
        async for _ in ws:
            pass
    finally:
        request.app[CLIENTS].discard(ws)
    return ws


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"ready": True})


def serve(port: int) -> None:
    app = web.Application()
    app[CLIENTS] = set()
    app.cleanup_ctx.append(broker_ctx)
    app.router.add_post("/t", submit)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --------------------------------------------------------------------------- the measurement


async def floor_latency(http: aiohttp.ClientSession, url: str,
                        ws: aiohttp.ClientWebSocketResponse) -> float:
    """One task through the floor: POST, then its outcome on the WebSocket, in ms."""
    started = time.perf_counter()
    async with http.post(f"{url}/t") as resp:
        if resp.status != 202:
            raise RuntimeError(f"floor gateway answered {resp.status}")
        task_id = (await resp.json())["task_id"]
    while json.loads(await ws.receive_bytes(timeout=30))["task_id"] != task_id:
        pass
    return 1000 * (time.perf_counter() - started)


async def wait_ready(url: str, proc: Proc) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if not proc.alive():
                raise RuntimeError(f"{proc.name} died; see {proc.log_path}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{url}/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{proc.name} never became ready")


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (f"p50 {statistics.median(ordered):6.2f} ms  "
            f"p99 {ordered[int(0.99 * (len(ordered) - 1))]:6.2f} ms")


async def consuming(proc: Proc, url: str, queue: str) -> None:
    """Until ``proc`` consumes ``queue`` (bounded); fails early if it died."""
    for _ in range(600):
        if not proc.alive():
            raise RuntimeError(f"{proc.name} died; see {proc.log_path}")
        if await consumers(url, queue) > 0:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{proc.name} never consumed {queue}")


def celery_worker(app: str, queue: str, name: str, env: dict[str, str], concurrency: int,
                  log_dir: Path) -> Proc:
    return Proc(name, [
        str(BIN / "celery"), "-A", app, "worker", "--pool=prefork",
        f"--concurrency={concurrency}", f"--queues={queue}", "--loglevel=WARNING",
        "--without-mingle", "--without-gossip", "--without-heartbeat", "-n", f"{name}@%h"],
        env, log_dir)


async def run(tasks: int, rounds: int, concurrency: int) -> dict[str, list[float]]:
    """Every side's worker runs throughout; the sides take turns task by task (the
    order rotating), so a noisy moment on this shared machine hits all three alike."""
    with private_vhost("cargo-bench-latency-floor") as settings:
        log_dir = Path(tempfile.gettempdir()) / "cargo-bench-logs"
        env = process_env(settings, **{celery_bare.URL_VARIABLE: settings.rabbitmq_url})
        floor_port, cargo_port = free_port(), free_port()
        floor_url, cargo_url = f"http://127.0.0.1:{floor_port}", f"http://127.0.0.1:{cargo_port}"
        serve_floor = [str(BIN / "python"), "-m", "bench.latency_floor", "--serve",
                       str(floor_port)]
        procs = [Proc("floor-gateway", serve_floor, env, log_dir),
                 start_gateway(cargo_port, env, log_dir),
                 start_worker("cargo-worker", env, log_dir, concurrency),
                 celery_worker(f"{celery_outcomes.__name__}:app", celery_bare.QUEUE,
                               "floor-worker", env, concurrency, log_dir),
                 celery_worker("bench.peers.celery_rpc:app", celery_rpc.QUEUE,
                               "peer-worker", env, concurrency, log_dir)]
        peer_app = celery_rpc.create_app(settings)
        results: dict[str, list[float]] = {"peer": [], "floor": [], "cargo": []}
        try:
            await wait_ready(floor_url, procs[0])
            await wait_ready(cargo_url, procs[1])
            await consuming(procs[3], settings.rabbitmq_url, celery_bare.QUEUE)
            await consuming(procs[4], settings.rabbitmq_url, celery_rpc.QUEUE)
            async with aiohttp.ClientSession() as http:
                await e2e.wait_for_task_catalog(http, cargo_url, procs[2])
                async with http.ws_connect(f"{cargo_url}/ws", max_msg_size=0) as cargo_ws, \
                        http.ws_connect(f"{floor_url}/ws") as floor_ws:
                    await cargo_ws.send_json({"op": "subscribe", "all": True})
                    await cargo_ws.receive_json(timeout=10)
                    events = e2e.TerminalEvents(cargo_ws)
                    reader = asyncio.create_task(events.read())
                    cargo = e2e.CargoSide(cargo_url, http, events, procs[1], procs[2])
                    peer = e2e.PeerSide(peer_app, procs[4], e2e.DaemonThread())
                    sides = ["floor", "cargo", "peer"]
                    for round_no in range(1, rounds + 1):
                        samples: dict[str, list[float]] = {side: [] for side in sides}
                        for n in range(tasks):
                            for side in sides[n % 3:] + sides[:n % 3]:
                                if side == "floor":
                                    samples[side].append(
                                        await floor_latency(http, floor_url, floor_ws))
                                elif side == "cargo":
                                    samples[side] += await e2e.cargo_latencies(cargo, 1)
                                else:
                                    samples[side] += await peer.thread.run(
                                        lambda: peer.latencies(1))
                        for side in sides:
                            results[side] += samples[side]
                            print(f"round {round_no} {side:5s} {summary(samples[side])}",
                                  flush=True)
                    reader.cancel()
        finally:
            peer_app.close()
            for proc in procs:
                proc.stop()
        return results


PEER_NAME = "Celery delay().get() over rpc://"
FLOOR_NAME = "the design's floor (HTTP in, confirmed stream outcome, WebSocket out; no Cargo code)"


def rows(results: dict[str, list[float]], tasks: int) -> list[Row]:
    table: list[Row] = []
    for name, q in (("p50", 50), ("p99", 99)):
        peer, floor, cargo = (percentile(results[side], q) for side in ("peer", "floor", "cargo"))
        table.append(Row(f"latency {name}, the design's floor vs the peer ({tasks} tasks/round)",
                         "ms", floor, peer, PEER_NAME, better="lower",
                         note=f"the first column is {FLOOR_NAME}, not Cargo"))
        table.append(Row(f"latency {name}, Cargo vs the design's floor", "ms", cargo, floor,
                         FLOOR_NAME, better="lower"))
    return table


def main() -> None:
    if "--serve" in sys.argv:
        serve(int(sys.argv[sys.argv.index("--serve") + 1]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=None, help="per side and round (400)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (3)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes, all sides")
    parser.add_argument("--quick", action="store_true", help="smoke run: 50 tasks, one round")
    parser.add_argument("--json-out", type=Path, default=None,
                        help="where to write the section report (default: bench/results/)")
    args = parser.parse_args()
    tasks = args.tasks or (50 if args.quick else 400)
    rounds = args.rounds or (1 if args.quick else 3)
    results = asyncio.run(run(tasks, rounds, args.concurrency))
    for side, samples in results.items():
        print(f"{side:5s} {summary(samples)}")
    SectionReport("latency_floor", rows(results, tasks), raw={
        "parameters": {"tasks": tasks, "rounds": rounds, "concurrency": args.concurrency},
        "samples_ms": results,
    }).save(args.json_out, RESULTS)


if __name__ == "__main__":
    main()
