"""One client process of the fan-out benchmark: many real WebSocket clients.

The clients live in processes of their own so that the gateway process is
measured alone. The parent (:mod:`bench.fanout`) talks to this process by lines
on stdin/stdout:

1. it starts ``python -m bench.fanout_clients --url WS_URL --mode task|all
   --ids-file PATH [--first I --count N]``; the process opens its clients (mode
   ``task``: client ``i`` subscribes to task id ``ids[first + i]``; mode
   ``idle``: the same, for tasks never submitted (it reports at once); mode
   ``all``: ``count`` clients subscribe to ``all``), waits for every
   ``subscribed`` frame and prints ``READY``;
2. it then reads events until every client saw the ``succeeded`` event of every
   task it should (or ``--timeout`` passes) and prints one JSON line
   ``{"clients", "complete", "events", "min_events", "max_events", "last_at",
   "lags", "out_of_order", "closed_early"}`` (``last_at`` is wall-clock time,
   comparable across processes; ``lags`` the percentiles of the delivery lag: the
   time from a ``succeeded`` event's ``ts``, stamped by the worker, to its arrival);
3. on ``CLOSE`` from stdin it closes every socket and prints ``CLOSED``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

# Connections opened at once (the gateway's listen backlog is aiohttp's default, 128).
CONNECT_CONCURRENCY = 100
# The order of a task's lifecycle events on the wire (``queued`` may be absent:
# a task that started before its announcement was read has it dropped as stale).
_RANK = {"queued": 0, "started": 1, "succeeded": 2}


@dataclass
class Client:
    ws: aiohttp.ClientWebSocketResponse
    wanted: set[str]  # task ids whose ``succeeded`` this client still waits for
    events: int = 0
    last_at: float = 0.0
    out_of_order: int = 0
    closed_early: bool = False
    ranks: dict[str, int] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)

    def take(self, frame: dict[str, Any], now: float) -> None:
        if frame.get("type") != "event":
            return
        self.events += 1
        self.last_at = now
        if frame["state"] == "succeeded":  # the lag of the outcome only: parsing is costly
            self.lags.append(now - datetime.fromisoformat(frame["ts"]).timestamp())
        task_id, rank = frame["task_id"], _RANK.get(frame["state"], -1)
        if rank <= self.ranks.get(task_id, -1):
            self.out_of_order += 1
        self.ranks[task_id] = rank
        if frame["state"] == "succeeded":
            self.wanted.discard(task_id)


async def open_client(http: aiohttp.ClientSession, url: str, subscribe: dict[str, Any],
                      wanted: set[str], gate: asyncio.Semaphore) -> Client:
    async with gate:
        # Offering permessage-deflate, as browsers do: the gateway decides.
        ws = await http.ws_connect(url, autoping=True, max_msg_size=0, compress=15)
        await ws.send_str(json.dumps(subscribe))
        while True:  # the confirmation comes first
            frame = json.loads((await ws.receive()).data)
            if frame.get("type") == "subscribed":
                return Client(ws, wanted)


async def read_until_complete(client: Client) -> None:
    ws = client.ws
    while client.wanted:
        message = await ws.receive()
        if message.type != aiohttp.WSMsgType.TEXT:
            client.closed_early = True  # closed by the gateway (e.g. too far behind)
            break
        client.take(json.loads(message.data), time.time())


async def run(args: argparse.Namespace, ids: list[str]) -> None:
    plan: list[tuple[dict[str, Any], set[str]]]
    if args.mode in ("task", "idle"):
        plan = [({"op": "subscribe", "task_ids": [task_id]},
                 {task_id} if args.mode == "task" else set())
                for task_id in ids[args.first:args.first + args.count]]
    else:
        plan = [({"op": "subscribe", "all": True}, set(ids)) for _ in range(args.count)]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        clients = await asyncio.gather(*(open_client(http, args.url, frame, wanted, gate)
                                         for frame, wanted in plan))
        readers = [asyncio.create_task(read_until_complete(c)) for c in clients]
        print("READY", flush=True)
        await asyncio.wait(readers, timeout=args.timeout)
        for reader in readers:
            reader.cancel()
        counts = [c.events for c in clients]
        lags = sorted(lag for c in clients for lag in c.lags)
        print(json.dumps({
            "clients": len(clients),
            "complete": sum(1 for c in clients if not c.wanted),
            "events": sum(counts),
            "min_events": min(counts, default=0),
            "max_events": max(counts, default=0),
            "last_at": max((c.last_at for c in clients), default=0.0),
            "lags": percentiles(lags),
            "out_of_order": sum(c.out_of_order for c in clients),
            "closed_early": sum(1 for c in clients if c.closed_early),
        }), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)
    print("CLOSED", flush=True)


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 and max of sorted ``values`` (seconds), and their count."""
    if not values:
        return {}
    cuts = statistics.quantiles(values, n=100) if len(values) > 1 else [values[0]] * 99
    return {"p50": cuts[49], "p99": cuts[98], "max": values[-1], "count": len(values)}


def raise_open_files_limit() -> int:
    """As many sockets as the hard limit allows (the soft default is often 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=("task", "idle", "all"), required=True)
    parser.add_argument("--ids-file", required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    raise_open_files_limit()
    asyncio.run(run(args, json.loads(Path(args.ids_file).read_text())))


if __name__ == "__main__":
    main()
