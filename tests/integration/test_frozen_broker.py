"""A frozen broker (process stopped, TCP still open) makes the gateway unready, with
the reason, and a thawed one makes it ready again by itself.

The shared RabbitMQ must not be stopped, so the gateway talks to it through
``bench.proxy``, whose ``freeze`` is what a SIGSTOPped broker looks like
from the client: the connection stays open and nothing comes back.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import pytest_asyncio

from bench.proxy import BrokerProxy
from broker.settings import Settings
from tests.support.eventually import eventually
from tests.support.gateway import Gateway, running_gateway

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# Far below aiormq's default heartbeat grace (3 x 61 s): without the liveness
# check the gateway would still call itself ready when this bound runs out.
NOTICE_WITHIN = 30.0


@pytest_asyncio.fixture
async def proxied(rabbitmq: Settings) -> AsyncIterator[tuple[BrokerProxy, Settings]]:
    target = urlsplit(rabbitmq.rabbitmq_url)
    proxy = BrokerProxy(target.hostname or "127.0.0.1", target.port or 5672)
    await proxy.start()
    netloc = f"{target.username}:{target.password}@127.0.0.1:{proxy.port}"
    url = urlunsplit((target.scheme, netloc, target.path, "", ""))
    try:
        yield proxy, rabbitmq.model_copy(update={"rabbitmq_url": url,
                                                 "management_url": rabbitmq.management_api})
    finally:
        proxy.thaw()
        await proxy.stop()


async def readyz(gw: Gateway) -> tuple[int, Any]:
    async with gw.http.get(f"{gw.url}/readyz") as resp:
        return resp.status, await resp.json()


async def wait_readyz(gw: Gateway, status: int, timeout: float) -> tuple[Any, float]:
    """Poll /readyz until it answers ``status`` (bounded); its body and how long it took."""
    start = time.monotonic()
    _, body = await eventually(lambda: readyz(gw), timeout, f"/readyz answering {status}",
                               until=lambda answer: answer[0] == status)
    return body, time.monotonic() - start


async def test_readyz_says_the_broker_stopped_answering_while_it_is_frozen_and_recovers_when_it_thaws(  # noqa: E501
        proxied: tuple[BrokerProxy, Settings]) -> None:
    proxy, settings = proxied
    async with running_gateway(settings) as gw:
        assert (await readyz(gw))[0] == 200
        await gw.submit_distance()

        proxy.freeze()
        body, took = await wait_readyz(gw, 503, NOTICE_WITHIN)
        print(f"\n/readyz turned 503 {took:.1f}s after the broker froze: {body}")
        assert body["status"] == "not_ready"
        assert "did not answer" in body["checks"]["broker"], body

        # meanwhile a submission is refused at once, not left hanging
        async with gw.http.post(f"{gw.url}/distance/?x=3&y=4") as resp:
            assert resp.status == 503, await resp.text()
            assert (await resp.json())["error"]["code"] == "broker_unavailable"
            assert resp.headers["Retry-After"] == str(settings.retry_after_seconds)

        proxy.thaw()
        body, took = await wait_readyz(gw, 200, 60)
        print(f"/readyz back to 200 {took:.1f}s after the thaw")
        assert body["checks"]["broker"] == "ok"
        async with gw.http.post(f"{gw.url}/distance/?x=3&y=4") as resp:
            assert resp.status == 202, await resp.text()
