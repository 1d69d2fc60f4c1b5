"""The gateway's surface: OpenAPI document, health, metrics and optional auth."""

from __future__ import annotations

import aiohttp
import pytest

from broker.settings import Settings
from tests.support.gateway import running_gateway

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token-for-tests-only"


async def test_the_openapi_document_describes_every_route_the_gateway_serves(
    rabbitmq: Settings,
) -> None:
    async with running_gateway(rabbitmq) as gw:
        async with gw.http.get(f"{gw.url}/openapi.json") as resp:
            assert resp.status == 200
            doc = await resp.json()
        served = {
            (route.method.lower(), route.resource.canonical)
            for route in gw.app.router.routes()
            if route.resource is not None and route.method != "HEAD"
        }
    # Each announced task also has a path of its own (x-cargo-task), served by /tasks/{name}.
    per_task = {path for path, ops in doc["paths"].items() if "x-cargo-task" in ops}
    documented = {(method, path) for path, ops in doc["paths"].items() if path not in per_task
                  for method in ops}
    assert doc["openapi"].startswith("3.")
    assert served == documented
    assert {"/tasks/calculate_distance", "/tasks/sleep", "/tasks/memory_leak_task"} <= per_task
    schemas = doc["components"]["schemas"]
    assert {"SubmitBody", "Accepted", "Task", "Error"} <= schemas.keys()
    assert "calculate_distance" in doc["paths"]["/tasks/{name}"]["post"]["parameters"][0][
        "schema"]["enum"]


async def test_health_is_always_200_and_readiness_reports_its_checks(rabbitmq: Settings) -> None:
    async with running_gateway(rabbitmq) as gw:
        async with gw.http.get(f"{gw.url}/healthz") as resp:
            assert resp.status == 200
        async with gw.http.get(f"{gw.url}/readyz") as resp:
            assert resp.status == 200
            assert (await resp.json())["checks"] == {"broker": "ok", "catalog": "ok",
                                                     "events": "ok"}


async def test_metrics_count_this_gateways_submissions_by_outcome(rabbitmq: Settings) -> None:
    async with running_gateway(rabbitmq) as gw:
        for _ in range(3):
            await gw.submit_distance()
        async with gw.http.get(f"{gw.url}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    assert 'cargo_submissions_total{name="calculate_distance",outcome="accepted"} 3.0' in text
    assert "cargo_publish_latency_seconds_bucket" in text
    assert "cargo_gateway_broker_connected 1.0" in text
    assert 'celery_task_sent_total{hostname=' in text


async def test_with_a_token_configured_requests_without_it_get_401(rabbitmq: Settings) -> None:
    settings = rabbitmq.model_copy(update={"auth_token": TOKEN})
    async with running_gateway(settings) as gw:
        async with gw.http.post(f"{gw.url}/distance/?x=3&y=4") as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "unauthorized"
        wrong = {"Authorization": "Bearer not-the-token"}
        async with gw.http.get(f"{gw.url}/tasks/x", headers=wrong) as resp:
            assert resp.status == 401
        right = {"Authorization": f"Bearer {TOKEN}"}
        async with gw.http.post(f"{gw.url}/distance/?x=3&y=4", headers=right) as resp:
            assert resp.status == 202
        async with gw.http.get(f"{gw.url}/catalog") as resp:
            assert resp.status == 401  # the catalog is API, not a probe
        async with gw.http.get(f"{gw.url}/catalog", headers=right) as resp:
            assert resp.status == 200
        # The document is open; the announced tasks in it are for token holders only.
        async with gw.http.get(f"{gw.url}/openapi.json") as resp:
            assert resp.status == 200
            anonymous = await resp.json()
        async with gw.http.get(f"{gw.url}/openapi.json", headers=right) as resp:
            assert resp.status == 200
            authorised = await resp.json()
        assert "/tasks/calculate_distance" not in anonymous["paths"]
        assert "enum" not in anonymous["paths"]["/tasks/{name}"]["post"]["parameters"][0][
            "schema"]
        assert "/tasks/calculate_distance" in authorised["paths"]
        async with gw.http.get(f"{gw.url}/healthz") as resp:
            assert resp.status == 200  # probes need no token

        ws_url = gw.url.replace("http", "ws", 1) + "/ws"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await gw.http.ws_connect(ws_url)
        assert refused.value.status == 401
        async with gw.http.ws_connect(f"{ws_url}?token={TOKEN}") as ws:
            await ws.send_json({"op": "ping"})
            assert await ws.receive_json(timeout=10) == {"type": "pong"}
        async with gw.http.ws_connect(ws_url, headers=right) as ws:
            await ws.send_json({"op": "ping"})
            assert await ws.receive_json(timeout=10) == {"type": "pong"}
