"""The gateway's app factory and entry point.

Resources are ``cleanup_ctx`` generators, one per resource, under typed keys:
the broker connection (with its publisher and the events-stream reader hooked
onto it), then the background publishes of ``queued`` events, which must drain
before the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from broker.connection import BrokerConnection
from broker.logs import configure_logging
from broker.publisher import Publisher
from broker.settings import Settings
from broker.topology import build_topology
from gateway import health, openapi, tasks_api, ws
from gateway.auth import auth_middleware
from gateway.errors import error_middleware
from gateway.events_reader import EventsReader
from gateway.hub import Hub
from gateway.keys import (
    BROKER_KEY,
    EVENTS_KEY,
    HUB_KEY,
    METRICS_KEY,
    PUBLISHER_KEY,
    SETTINGS_KEY,
    TOPOLOGY_KEY,
)
from gateway.metrics import GatewayMetrics
from gateway.store import EventRing, TaskStore
from gateway.tasks_api import BACKGROUND_KEY

log = structlog.get_logger(__name__)

DRAIN_SECONDS = 5.0


async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    connection = BrokerConnection(settings, app[TOPOLOGY_KEY], name="cargo-gateway")
    reader = EventsReader(app[HUB_KEY], settings.events_replay_seconds, app[METRICS_KEY])
    connection.on_connect(reader.on_connect)
    app[BROKER_KEY] = connection
    app[EVENTS_KEY] = reader
    app[PUBLISHER_KEY] = Publisher(connection, settings.publish_timeout)
    hub = app[HUB_KEY]
    app[METRICS_KEY].bind(connections=lambda: hub.connections,
                          subscriptions=lambda: hub.subscriptions,
                          tasks=lambda: len(hub.store), broker_ready=lambda: connection.ready)
    await connection.start()
    yield
    await connection.stop()


async def background_ctx(app: web.Application) -> AsyncIterator[None]:
    tasks: set[asyncio.Task[None]] = set()
    app[BACKGROUND_KEY] = tasks
    yield
    if tasks:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True),
                                   DRAIN_SECONDS)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[error_middleware, auth_middleware],
    )
    app[SETTINGS_KEY] = settings
    app[TOPOLOGY_KEY] = build_topology(settings)
    app[METRICS_KEY] = GatewayMetrics()
    app[HUB_KEY] = Hub(TaskStore(settings.task_store_size), EventRing(settings.event_buffer_size))
    app.cleanup_ctx.append(broker_ctx)
    app.cleanup_ctx.append(background_ctx)
    for table in (tasks_api.routes, ws.routes, health.routes, openapi.routes):
        app.router.add_routes(table)
    return app


def run(settings: Settings, host: str, port: int) -> None:
    configure_logging(settings)
    log.info("gateway.starting", host=host, port=port, vhost=settings.vhost)
    web.run_app(create_app(settings), host=host, port=port, access_log=None, print=None,
                shutdown_timeout=10.0)
