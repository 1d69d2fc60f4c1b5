"""Issue 11's scenario 4, scaled to this machine: a burst of submissions while many
WebSocket clients subscribed to ``all`` keep the gateway's event loop busy; a client
retries every 503/504/409 with the same Idempotency-Key, as the README advises.

Prints the first answers by status, the retries, how many task messages ran (the
``started`` events per task id on the stream: more than one is a duplicate) and
whether the gateway's broker connection was reopened. Real broker (a private
vhost), a real worker, a real gateway and real WebSocket clients, in one process
with the gateway (which makes its loop busier still).

``python -m bench.experiments.burst_under_fanout [--clients 1000] [--burst 1000]``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
import uuid
from typing import Any

import aiohttp

from bench.bridge import log_dir, wait_consuming
from bench.inprocess_gateway import serving_gateway
from bench.procs import start_worker, wait_ready
from bench.stream_tally import StreamTally
from bench.vhost import private_vhost, process_env
from broker.settings import Settings
from gateway.keys import BROKER_KEY

MAX_TRIES = 50


async def submit_until_accepted(http: aiohttp.ClientSession, url: str, n: int,
                                firsts: collections.Counter[str],
                                retries: collections.Counter[str]) -> str:
    key = f"burst-{uuid.uuid4()}"
    for attempt in range(MAX_TRIES):
        # The key both ways (a gateway without the header still reads the option).
        async with http.post(f"{url}/tasks/calculate_distance",
                                json={"args": [n, 0], "options": {"idempotency_key": key}},
                                headers={"Idempotency-Key": key}) as resp:
            doc: Any = await resp.json()
            # The status with the error code, so the cause of a 503 shows.
            answer = str(resp.status) if resp.status == 202 else \
                f"{resp.status} {doc.get('error', {}).get('code')}"
            if attempt == 0:
                firsts[answer] += 1
            else:
                retries[answer] += 1
            if resp.status == 202:
                return str(doc["task_id"])
            await asyncio.sleep(float(resp.headers.get("Retry-After", "1")) / 4)
    raise RuntimeError(f"submission {n} not accepted after {MAX_TRIES} tries")


async def run(settings: Settings, clients: int, burst: int) -> None:
    # The WebSocket clients get a session of their own without aiohttp's
    # 100-connection limit.
    async with serving_gateway(settings) as (app, url), \
            StreamTally([settings.rabbitmq_url]) as stream, \
            aiohttp.ClientSession() as http, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as ws_http:
        await wait_ready(http, url, None)
        link = app[BROKER_KEY].connection
        ws_url = url.replace("http", "ws", 1) + "/ws"
        sockets = [await ws_http.ws_connect(ws_url) for _ in range(clients)]
        for ws in sockets:
            await ws.send_json({"op": "subscribe", "all": True})

        async def drain(ws: aiohttp.ClientWebSocketResponse) -> None:
            while True:
                await ws.receive()

        drains = [asyncio.create_task(drain(ws)) for ws in sockets]
        firsts: collections.Counter[str] = collections.Counter()
        retries: collections.Counter[str] = collections.Counter()
        started = time.monotonic()
        ids = await asyncio.gather(*(submit_until_accepted(http, url, n, firsts, retries)
                                     for n in range(burst)))
        answered = time.monotonic() - started
        wanted = set(ids)
        missing = await stream.wait_finished(wanted, timeout=600)
        if missing:
            raise TimeoutError(f"{len(missing)} tasks never finished")
        # Duplicates would have run by now if any were queued.
        await asyncio.sleep(2)
        runs = collections.Counter({task_id: stream.count(task_id, "started")
                                    for task_id in wanted if stream.count(task_id, "started")})
        failed = sum(1 for task_id in wanted if not stream.count(task_id, "succeeded"))
        reopened = app[BROKER_KEY].connection is not link
        for task in drains:
            task.cancel()
        for ws in sockets:
            await ws.close()
    print(f"clients={clients} burst={burst} answered_in={answered:.1f}s")
    print(f"first answers: {dict(sorted(firsts.items()))}; "
          f"retries: {dict(sorted(retries.items()))}")
    print(f"tasks accepted: {len(wanted)}; executions: {sum(runs.values())}; "
          f"ran more than once: {sum(1 for c in runs.values() if c > 1)}; "
          f"never started: {len(wanted - set(runs))}; finished without succeeding: {failed}")
    print(f"broker connection reopened: {reopened}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args()
    with private_vhost("cargo-bench-burst") as settings:
        worker = start_worker("bench-burst-worker", process_env(settings), log_dir())
        try:
            # Its announcement is the gateway's catalog: calculate_distance is accepted.
            asyncio.run(wait_consuming(settings, worker))
            asyncio.run(run(settings, args.clients, args.burst))
        finally:
            worker.stop()


if __name__ == "__main__":
    main()
