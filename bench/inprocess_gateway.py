"""A Cargo gateway served in the caller's own event loop, on a free local port.

For runs that need the gateway's objects (its broker link) or want their clients
on the gateway's loop (``bench.experiments.burst_under_fanout``); the tests'
``running_gateway`` serves it the same way (``bench`` does not import ``tests``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from broker.settings import Settings
from gateway.app import create_app


@asynccontextmanager
async def serving_gateway(settings: Settings) -> AsyncIterator[tuple[web.Application, str]]:
    """``(app, base URL)`` of a gateway serving on 127.0.0.1, cleaned up on the way out."""
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield app, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
