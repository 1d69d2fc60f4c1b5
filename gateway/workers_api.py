"""``GET /workers``: the live workers, as their catalog announcements describe them.

Live: a worker whose latest announcement (``broker.catalog``) has not expired
and was not a withdrawal. ``last_seen`` is when the worker made that
announcement (by its clock); workers re-announce every
``CARGO_CATALOG_INTERVAL`` seconds. ``concurrency``, ``rss_bytes`` (resident
memory of the main process, the pool's children and anything they started)
and ``processes`` are those of the announcement: null for a worker of a Cargo
release that did not announce them.
"""

from __future__ import annotations

from aiohttp import web

from broker.catalog import Announcement
from gateway.keys import CATALOG_KEY
from gateway.responses import Worker, Workers

routes = web.RouteTableDef()


def worker_item(announcement: Announcement) -> Worker:
    return Worker(hostname=announcement.worker, queues=list(announcement.queues),
                  concurrency=announcement.concurrency, rss_bytes=announcement.rss_bytes,
                  processes=announcement.processes,
                  last_seen=announcement.announced_at.isoformat())


@routes.get("/workers")
async def list_workers(request: web.Request) -> web.Response:
    """Sorted by hostname."""
    live = sorted(request.app[CATALOG_KEY].live_workers(), key=lambda a: a.worker)
    return web.json_response(Workers(workers=[worker_item(a) for a in live]))
