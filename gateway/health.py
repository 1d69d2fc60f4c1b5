"""Liveness, readiness and metrics routes."""

from __future__ import annotations

import structlog
from aiohttp import web

from broker.connection import BrokerConnection
from gateway.keys import (
    BROKER_KEY,
    CATALOG_READER_KEY,
    DEADLETTERS_KEY,
    EVENTS_KEY,
    EVENTS_LINK_KEY,
    METRICS_KEY,
    SETTINGS_KEY,
)
from gateway.responses import Health, Readiness, ReadinessChecks

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()
# At most this long reading the dead-letter queues' depth on a scrape.
DEPTH_TIMEOUT = 2.0


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves requests."""
    return web.json_response(Health(status="ok"))


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 when connected with topology declared and the catalog and events replays
    caught up (before that, a live worker's task could be answered 404)."""
    broker = request.app[BROKER_KEY]
    events = request.app[EVENTS_KEY]
    catalog = request.app[CATALOG_READER_KEY]
    checks = ReadinessChecks(
        broker="ok" if broker.ready else (broker.last_error or "not connected"),
        catalog="ok" if catalog.caught_up.is_set() else "replaying the catalog stream",
        events=_events_check(events.caught_up.is_set(), request.app[EVENTS_LINK_KEY]),
    )
    ready = all(v == "ok" for v in checks.values())
    headers = {} if ready else {
        "Retry-After": str(request.app[SETTINGS_KEY].retry_after_seconds)}
    return web.json_response(Readiness(status="ready" if ready else "not_ready", checks=checks),
                             status=200 if ready else 503, headers=headers)


def _events_check(caught_up: bool, link: BrokerConnection) -> str:
    if not link.ready:
        return f"events stream: {link.last_error or 'not connected'}"
    return "ok" if caught_up else "replaying the events stream"


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    try:
        await request.app[DEADLETTERS_KEY].refresh_depths_within(DEPTH_TIMEOUT)
    except Exception as exc:  # a metric that could not be refreshed keeps its last value
        log.warning("metrics.dead_letter_depth_failed", error=f"{type(exc).__name__}: {exc}")
    body = request.app[METRICS_KEY].render()
    return web.Response(body=body, headers={
        "Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
