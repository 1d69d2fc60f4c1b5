"""The gateway's app factory and entry point.

Resources are ``cleanup_ctx`` generators, one per resource, each holding its
resource in ``async with`` across its ``yield``, under typed keys: the broker
connection (with its publisher and the catalog reader hooked onto it), the
events-stream reader's connection, then the announcer of ``queued`` events,
which must drain before the connections close (cleanup runs in reverse).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from broker.announcer import Announcer
from broker.catalog import Catalog
from broker.catalog_reader import CatalogMetrics, CatalogReader
from broker.celery_protocol import task_origin
from broker.connection import BrokerConnection
from broker.logs import configure_logging
from broker.publisher import Publisher
from broker.settings import GatewaySettings
from broker.topology import build_topology
from gateway import (
    catalog_api,
    deadletters_api,
    health,
    openapi,
    queues_api,
    recent_api,
    tasks_api,
    workers_api,
    ws,
)
from gateway.auth import auth_middleware, warn_if_open
from gateway.console_routes import ConsoleAssets, console_routes
from gateway.errors import error_middleware
from gateway.events_reader import EventsReader
from gateway.hub import Hub
from gateway.idempotency import IdempotencyKeys
from gateway.keys import (
    ANNOUNCER_KEY,
    BROKER_KEY,
    CATALOG_KEY,
    CATALOG_READER_KEY,
    EVENTS_KEY,
    EVENTS_LINK_KEY,
    HUB_KEY,
    IDEMPOTENCY_KEY,
    METRICS_KEY,
    ORIGIN_KEY,
    PUBLISHER_KEY,
    REVOKER_KEY,
    SETTINGS_KEY,
    TASK_IDS_KEY,
    TOPOLOGY_KEY,
)
from gateway.memory import MemoryReleaser
from gateway.metrics import GatewayMetrics
from gateway.revoker import Revoker
from gateway.store import EventRing, TaskStore
from gateway.task_ids import TaskIds

log = structlog.get_logger(__name__)

DRAIN_SECONDS = 5.0


async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
    """The publisher's connection, with the catalog reader hooked onto it."""
    settings = app[SETTINGS_KEY]
    connection = BrokerConnection(settings, app[TOPOLOGY_KEY], name="cargo-gateway")
    # The catalog first: what may be submitted is known before the gateway is ready.
    catalog_reader = CatalogReader(app[CATALOG_KEY],
                                   CatalogMetrics(app[METRICS_KEY].registry))
    connection.on_connect(catalog_reader.on_connect)
    connection.on_vhost_lost(catalog_reader.forget_position)
    app[CATALOG_READER_KEY] = catalog_reader
    app[BROKER_KEY] = connection
    app[PUBLISHER_KEY] = Publisher(connection, settings.publish_timeout,
                                   settings.publish_outcome_timeout)
    hub = app[HUB_KEY]
    app[METRICS_KEY].bind(connections=lambda: hub.connections,
                          subscriptions=lambda: hub.subscriptions,
                          tasks=lambda: len(hub.store), broker_ready=lambda: connection.ready)
    async with connection:
        yield


async def events_link_ctx(app: web.Application) -> AsyncIterator[None]:
    """The events-stream reader, on a connection of its own (closed before the
    publisher's: cleanup runs in reverse)."""
    settings = app[SETTINGS_KEY]
    reader = EventsReader(app[HUB_KEY], settings.events_replay_seconds, app[METRICS_KEY])
    # The events stream on a connection of its own. On the publisher's, its
    # deliveries (up to the prefetch window in flight, read a few frames per
    # loop turn) sat in the socket ahead of the publish confirms and the
    # liveness check's answers: a loop busy fanning events out to 1,000
    # clients read those seconds late, took the broker for frozen, dropped the
    # connection and failed the submissions in flight (issue 13).
    # Its deliveries are proof of life: its liveness answers wait behind them.
    events_link = BrokerConnection(settings, app[TOPOLOGY_KEY], name="cargo-gateway-events",
                                   heard_from=lambda: reader.last_heard)
    events_link.on_connect(reader.on_connect)
    events_link.on_vhost_lost(reader.forget_position)
    app[EVENTS_LINK_KEY] = events_link
    app[EVENTS_KEY] = reader
    async with events_link:
        yield


async def announcer_ctx(app: web.Application) -> AsyncIterator[None]:
    """The ``queued`` announcer, drained (up to DRAIN_SECONDS) before the connections close."""
    announcer = Announcer(app[PUBLISHER_KEY])
    app[ANNOUNCER_KEY] = announcer
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(announcer.close, DRAIN_SECONDS)
        yield


async def revoker_ctx(app: web.Application) -> AsyncIterator[None]:
    async with Revoker(app[BROKER_KEY], app[SETTINGS_KEY].publish_timeout) as revoker:
        app[REVOKER_KEY] = revoker
        app[HUB_KEY].listeners.append(revoker.on_event)
        yield
        app[HUB_KEY].listeners.remove(revoker.on_event)


async def memory_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB_KEY]
    async with MemoryReleaser(lambda: hub.connections):
        yield


def create_app(settings: GatewaySettings) -> web.Application:
    # auth_middleware lets every request through while no token is set (gateway.auth).
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[error_middleware, auth_middleware])
    app[SETTINGS_KEY] = settings
    app[TOPOLOGY_KEY] = build_topology(settings)
    app[METRICS_KEY] = GatewayMetrics()
    app[TASK_IDS_KEY] = TaskIds()
    app[ORIGIN_KEY] = task_origin()
    app[CATALOG_KEY] = Catalog(settings.vhost)
    app[HUB_KEY] = Hub(TaskStore(settings.task_store_size), EventRing(settings.event_buffer_size))
    app[IDEMPOTENCY_KEY] = IdempotencyKeys(settings.task_store_size)
    app[HUB_KEY].observers.append(app[IDEMPOTENCY_KEY].learn)
    app.cleanup_ctx.append(broker_ctx)
    app.cleanup_ctx.append(events_link_ctx)
    app.cleanup_ctx.append(announcer_ctx)
    app.cleanup_ctx.append(revoker_ctx)
    app.cleanup_ctx.append(deadletters_api.deadletters_ctx)
    app.cleanup_ctx.append(queues_api.queue_stats_ctx)
    app.cleanup_ctx.append(memory_ctx)
    # GET /tasks before the routes under /tasks/{...}: the list is no task id.
    for table in (recent_api.routes, tasks_api.routes, catalog_api.routes,
                  deadletters_api.routes, ws.routes, health.routes, openapi.routes,
                  queues_api.routes, workers_api.routes):
        app.router.add_routes(table)
    app.router.add_routes(console_routes(ConsoleAssets.from_package()))
    return app


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed, else asyncio's."""
    # bench.submit C=32: uvloop +15 % (RESULTS.md 'What the gateway could gain', item 2).
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(settings: GatewaySettings, host: str, port: int) -> None:
    configure_logging(settings)
    loop = new_event_loop()
    log.info("gateway.starting", host=host, port=port, vhost=settings.vhost,
             loop=type(loop).__module__)
    warn_if_open(settings)
    web.run_app(create_app(settings), host=host, port=port, access_log=None, print=None,
                shutdown_timeout=10.0, loop=loop)
