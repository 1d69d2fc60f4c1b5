"""A fallback HTTP load generator for when ``wrk`` is not installed.

``python -m bench.loadgen URL --concurrency C --seconds S`` keeps C requests in
flight (C keep-alive connections, each sending ``POST URL`` again as soon as its
answer arrived) for S seconds and prints one ``LOAD_JSON {...}`` line in the
same shape as ``bench/post.lua`` prints for wrk. It runs in its own process, so
it competes with the server for CPU like wrk does, only more: Python spends
several times wrk's CPU per request, so figures taken with it are lower bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter

import aiohttp

from bench.stats import percentile


async def run(url: str, concurrency: int, seconds: float, timeout: float) -> dict[str, object]:
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    async with session.post(url) as resp:
                        await resp.read()
                        statuses[resp.status] += 1
                except TimeoutError:
                    errors["timeout"] += 1
                    continue
                except aiohttp.ClientConnectionError:
                    errors["read"] += 1
                    await asyncio.sleep(0.01)
                    continue
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        duration = time.perf_counter() - started
    latencies.sort()
    micro = [v * 1e6 for v in latencies]
    return {
        "duration_us": int(duration * 1e6),
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": {"connect": errors["connect"], "read": errors["read"], "write": 0,
                   "status": sum(v for k, v in statuses.items() if k >= 400),
                   "timeout": errors["timeout"]},
        "latency_us": {
            "mean": statistics.fmean(micro) if micro else 0.0,
            **{f"p{p}": percentile(micro, p) if micro else 0.0 for p in (50, 90, 99)},
            "max": micro[-1] if micro else 0.0,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://127.", "http://localhost")):
        parser.error("load is only ever sent to this machine (http://127.x or localhost)")
    result = asyncio.run(run(args.url, args.concurrency, args.seconds, args.timeout))
    sys.stdout.write("LOAD_JSON " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
