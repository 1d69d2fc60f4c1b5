"""Every expression in every alert rule and dashboard panel reads only metrics that exist.

The names are collected from the running processes themselves: a gateway and a
worker scraped after they started, the canary's pushed registry, and RabbitMQ's
prometheus plugin (aggregated and per-queue endpoints).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest
from prometheus_client import generate_latest

from broker.settings import Settings
from cargoctl.canary import Outcome
from cargoctl.canary_metrics import canary_registry
from tests.support.gateway import running_gateway
from tests.support.metrics import free_port, wait_scrape
from tests.support.processes import start_worker
from tests.support.promql import exported_names, expressions, metric_names
from tests.support.rabbit import private_vhost

pytestmark = pytest.mark.integration

# Prometheus makes these for every target it scrapes.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


@pytest.fixture
def vhost(rabbitmq: Settings) -> Iterator[Settings]:
    with private_vhost("cargo-test-names") as settings:
        yield settings


async def text(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        resp.raise_for_status()
        return await resp.text()


def test_the_name_extraction_sees_metrics_and_nothing_else() -> None:
    assert metric_names('sum by (queue) (increase(cargo_x_total{reason="a b"}[10m])) > 1e-9 '
                        'and on (queue) up{job="rabbitmq"} / time()') == {"cargo_x_total", "up"}


async def test_every_rule_and_panel_expression_names_only_exported_metrics(
        vhost: Settings) -> None:
    port = free_port()
    worker = await asyncio.to_thread(start_worker, vhost, "names", 2,
                                     CARGO_WORKER_METRICS_PORT=str(port))
    try:
        async with running_gateway(vhost) as gw:
            gateway_text = await text(f"{gw.url}/metrics")
        await wait_scrape(f"http://127.0.0.1:{port}/metrics", lambda s: True)
        worker_text = await text(f"http://127.0.0.1:{port}/metrics")
    finally:
        await asyncio.to_thread(worker.stop)
    rabbit = f"http://{urlsplit(vhost.rabbitmq_url).hostname}:15692"
    query = urlencode([("family", "queue_coarse_metrics"), ("family", "queue_consumer_count"),
                       ("vhost", vhost.vhost)])
    sources = {
        "gateway": gateway_text,
        "worker": worker_text,
        "canary": generate_latest(canary_registry(Outcome(True, 0.1, "ok"))).decode(),
        "rabbitmq": await text(f"{rabbit}/metrics"),
        "rabbitmq-queues": await text(f"{rabbit}/metrics/detailed?{query}"),
    }
    exported = set(PROMETHEUS_OWN)
    for name, body in sources.items():
        names = exported_names(body)
        assert names, f"{name} exported nothing"
        exported |= names
    assert "rabbitmq_detailed_queue_messages_ready" in exported  # the vhost's queues exist

    unknown = {where: sorted(metric_names(expr) - exported)
               for where, expr in expressions().items() if metric_names(expr) - exported}
    assert unknown == {}
    assert len(expressions()) > 40
