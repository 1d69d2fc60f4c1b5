"""``GET /catalog``: the tasks live workers offer, as they announced them (``broker.catalog``)."""

from __future__ import annotations

from aiohttp import web

from gateway.keys import CATALOG_KEY

routes = web.RouteTableDef()


@routes.get("/catalog")
async def catalog(request: web.Request) -> web.Response:
    """Each task: name, queue, schema (``allOf`` the live schemas during a rolling
    deploy), doc when announced, limits, and how many live workers offer it."""
    items = [entry.to_json() for entry in request.app[CATALOG_KEY]]  # sorted by name
    return web.json_response({"items": items})
