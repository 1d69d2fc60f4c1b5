"""Measure the gateway across a broker outage: how fast a 503 comes, how fast it recovers.

    .venv/bin/python -m bench.recovery [--cycles 5]

Runs a real gateway (``cargoctl gateway``) whose broker connection goes through a
TCP proxy (``bench.proxy``) on a private vhost, and a real worker (connected
directly) whose announcement offers ``calculate_distance``; each cycle cuts the
proxy (the broker is gone: connections closed, new ones refused), times
``POST /distance/`` (expects 503 with Retry-After), restores it, and times
``/readyz`` back to 200 and the first 202 after that. Prints every figure and the
worst.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from bench.bridge import log_dir, wait_consuming
from bench.procs import free_port, start_gateway, start_worker, wait_ready
from bench.proxy import BrokerProxy
from bench.vhost import private_vhost, process_env
from broker.settings import Settings


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise TimeoutError


async def measure(settings: Settings, cycles: int) -> None:
    target = urlsplit(settings.rabbitmq_url)
    proxy = BrokerProxy(target.hostname or "127.0.0.1", target.port or 5672)
    await proxy.start()
    netloc = f"{target.username}:{target.password}@127.0.0.1:{proxy.port}"
    proxied = settings.model_copy(update={
        "rabbitmq_url": urlunsplit((target.scheme, netloc, target.path, "", "")),
        "management_url": settings.management_api})
    logs = log_dir()
    worker = start_worker("bench-recovery", process_env(settings), logs)
    port = free_port()
    gateway = start_gateway(port, process_env(proxied), logs)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_consuming(settings, worker)
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, url, gateway)
            rows = await cycles_of(http, url, proxy, cycles)
    finally:
        gateway.stop()
        worker.stop()
        await proxy.stop()

    print("| cycle | 503 answered in | /readyz 200 after broker back"
          " | first 202 after broker back |")
    print("| ---: | ---: | ---: | ---: |")
    for i, (refused, ready, accepted) in enumerate(rows, 1):
        print(f"| {i} | {refused * 1000:.1f} ms | {ready:.2f} s | {accepted:.2f} s |")
    print(f"| worst | {max(r[0] for r in rows) * 1000:.1f} ms | {max(r[1] for r in rows):.2f} s"
          f" | {max(r[2] for r in rows):.2f} s |")


async def cycles_of(http: aiohttp.ClientSession, url: str, proxy: BrokerProxy,
                    cycles: int) -> list[tuple[float, float, float]]:
    """(503 answered in, /readyz 200 after, first 202 after) of each outage cycle."""
    async def status(path: str, method: str = "GET") -> int:
        async with http.request(method, f"{url}{path}") as resp:
            await resp.read()
            return resp.status

    rows = []
    for _ in range(cycles):
        await proxy.go_down()
        await _until(lambda: _is(status("/readyz"), 503))
        started = time.monotonic()
        code = await status("/distance/?x=3&y=4", "POST")
        refused = time.monotonic() - started
        assert code == 503, code
        await proxy.come_back()
        ready = await _until(lambda: _is(status("/readyz"), 200))
        accepted = ready + await _until(
            lambda: _is(status("/distance/?x=3&y=4", "POST"), 202))
        rows.append((refused, ready, accepted))
    return rows


async def _is(awaitable: Awaitable[int], expected: int) -> bool:
    return await awaitable == expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=5)
    with private_vhost("cargo-bench") as settings:
        asyncio.run(measure(settings, parser.parse_args().cycles))


if __name__ == "__main__":
    main()
