"""``GET /queues``: Cargo's task queues with their depth, consumers and dead letters.

What is listed and where the figures come from: ``gateway.queue_stats``. The
management API unreachable (or answering nonsense) is a 503
``management_unavailable`` naming its URL (password masked) with a
``Retry-After``; nothing else about this route can fail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from broker.management import ManagementClient
from gateway.errors import ApiError
from gateway.keys import CATALOG_KEY, QUEUE_STATS_KEY, SETTINGS_KEY, TOPOLOGY_KEY
from gateway.queue_stats import (
    MANAGEMENT_TIMEOUT,
    ManagementUnavailable,
    QueueStats,
    queue_items,
    task_queue_names,
)
from gateway.responses import Queues

routes = web.RouteTableDef()


async def queue_stats_ctx(app: web.Application) -> AsyncIterator[None]:
    """The queues' figures, with a management API session of their own."""
    settings = app[SETTINGS_KEY]
    async with ManagementClient(settings.management_api, MANAGEMENT_TIMEOUT) as management:
        async with QueueStats(management, settings.management_api, settings.vhost) as stats:
            app[QUEUE_STATS_KEY] = stats
            yield


@routes.get("/queues")
async def list_queues(request: web.Request) -> web.Response:
    """Topology queues first (the default task queue), then the others by name."""
    app = request.app
    try:
        on_broker = await app[QUEUE_STATS_KEY].get()
    except ManagementUnavailable as exc:
        raise ApiError(503, "management_unavailable", str(exc),
                       {"management_url": exc.url},
                       headers={"Retry-After": str(app[SETTINGS_KEY].retry_after_seconds)}
                       ) from None
    names = task_queue_names([spec.name for spec in app[TOPOLOGY_KEY].task_queues],
                             app[CATALOG_KEY].queues(), on_broker)
    return web.json_response(Queues(queues=queue_items(names, on_broker)))
