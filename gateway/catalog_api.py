"""``GET /catalog``: the tasks live workers offer, as they announced them (``broker.catalog``)."""

from __future__ import annotations

from typing import cast

from aiohttp import web

from gateway.keys import CATALOG_KEY
from gateway.responses import Catalog, CatalogTask

routes = web.RouteTableDef()


@routes.get("/catalog")
async def catalog(request: web.Request) -> web.Response:
    """Each task: name, queue, schema (``allOf`` the live schemas during a rolling
    deploy), doc when announced, limits, and how many live workers offer it."""
    # The broker's side shapes each item (broker code does not import the gateway's
    # shapes); the drift test holds it to CatalogTask.
    items = [cast(CatalogTask, entry.to_json()) for entry in request.app[CATALOG_KEY]]
    return web.json_response(Catalog(items=items))  # sorted by name
