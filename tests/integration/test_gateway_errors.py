"""Bad input and bad times: the contract's exact codes, never a 5xx for a client's mistake."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import pytest_asyncio

from bench.proxy import BrokerProxy
from broker.settings import Settings
from gateway.keys import HUB_KEY
from tests.support.events import publish_marker
from tests.support.eventually import eventually
from tests.support.gateway import Gateway, events_of, running_gateway, terminal
from tests.support.processes import Proc

pytestmark = pytest.mark.integration

SMALL_BODY_LIMIT = 4096


@pytest_asyncio.fixture
async def gw(rabbitmq: Settings) -> AsyncIterator[Gateway]:
    settings = rabbitmq.model_copy(update={"max_body_bytes": SMALL_BODY_LIMIT})
    async with running_gateway(settings) as gateway:
        yield gateway


BAD_REQUESTS: list[tuple[str, str, str, dict[str, str], bytes | None, int, str]] = [
    # id, method, path, headers, body, status, code
    ("malformed json", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/json"}, b'{"args": [1, 2', 400, "malformed_json"),
    ("json that is not an object", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/json"}, b"[1, 2]", 400, "invalid_body"),
    ("wrong content type", "POST", "/tasks/calculate_distance",
     {"Content-Type": "text/plain"}, b'{"args": [1, 2]}', 415, "unsupported_media_type"),
    ("form content type", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/x-www-form-urlencoded"}, b"args=1", 415,
     "unsupported_media_type"),
    ("body over the limit", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/json"},
     b'{"args": [1, 2], "kwargs": {}, "pad": "' + b"x" * SMALL_BODY_LIMIT + b'"}', 413,
     "body_too_large"),
    ("unknown task", "POST", "/tasks/no_such_task",
     {"Content-Type": "application/json"}, b"{}", 404, "unknown_task"),
    ("memory leak rate out of range", "POST", "/memory-leak/",
     {"Content-Type": "application/json"}, b'{"kwargs": {"mb_per_second": 0}}', 422,
     "invalid_arguments"),
    ("too few arguments", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/json"}, b'{"args": [1]}', 422, "invalid_arguments"),
    ("too many arguments", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/json"}, b'{"args": [1, 2, 3]}', 422, "invalid_arguments"),
    ("string arguments", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/json"}, b'{"args": ["3", "4"]}', 422, "invalid_arguments"),
    ("boolean arguments", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/json"}, b'{"args": [true, 4]}', 422, "invalid_arguments"),
    ("unknown keyword", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/json"}, b'{"args": [1, 2], "kwargs": {"z": 1}}', 422,
     "invalid_arguments"),
    ("args not a list", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/json"}, b'{"args": {"x": 1}}', 422, "invalid_body"),
    ("unknown body field", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/json"}, b'{"args": [1, 2], "queue": "x"}', 422,
     "invalid_body"),
    ("unknown option", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/json"}, b'{"args": [1, 2], "options": {"bogus": 1}}', 422,
     "invalid_body"),
    ("countdown and eta together", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/json"},
     b'{"args": [1, 2], "options": {"countdown": 5, "eta": "2030-01-01T00:00:00Z"}}', 422,
     "invalid_body"),
    ("negative countdown", "POST", "/tasks/calculate_distance",
     {"Content-Type": "application/json"}, b'{"args": [1, 2], "options": {"countdown": -1}}',
     422, "invalid_body"),
    ("distance without y", "POST", "/distance/?x=3", {}, None, 422, "invalid_arguments"),
    ("distance with a word", "POST", "/distance/?x=3&y=four", {}, None, 422,
     "invalid_arguments"),
    ("distance with infinity", "POST", "/distance/?x=inf&y=1", {}, None, 422,
     "invalid_arguments"),
    ("distance with two minus signs", "POST", "/distance/?x=--3&y=1", {}, None, 422,
     "invalid_arguments"),
    ("distance with a superscript digit", "POST", "/distance/?x=%C2%B2&y=1", {}, None, 422,
     "invalid_arguments"),
    ("unknown task id", "GET", "/tasks/00000000-0000-0000-0000-000000000000", {}, None, 404,
     "task_not_found"),
    ("unknown route", "GET", "/nope", {}, None, 404, "not_found"),
    ("wrong method", "GET", "/distance/", {}, None, 405, "method_not_allowed"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "code"),
                         [case[1:] for case in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
async def test_bad_input_gets_the_contracts_status_and_error_shape(
    gw: Gateway, method: str, path: str, headers: dict[str, str], body: bytes | None,
    status: int, code: str
) -> None:
    async with gw.http.request(method, f"{gw.url}{path}", headers=headers, data=body) as resp:
        doc = await resp.json()
        assert resp.status == status, doc
        assert set(doc) == {"error"}
        assert doc["error"]["code"] == code
        assert isinstance(doc["error"]["message"], str)
        assert doc["error"]["message"]


async def test_validation_errors_say_which_argument_is_wrong(gw: Gateway) -> None:
    async with gw.http.post(f"{gw.url}/tasks/calculate_distance",
                            json={"args": ["three", 4]}) as resp:
        doc = await resp.json()
    assert resp.status == 422
    assert doc["error"]["details"], doc


async def test_an_empty_body_is_a_submission_with_no_arguments(gw: Gateway) -> None:
    async with gw.http.post(f"{gw.url}/tasks/calculate_distance") as resp:
        doc = await resp.json()
    # calculate_distance needs x and y: the empty body parsed fine, the arguments did not fit.
    assert resp.status == 422, doc
    assert doc["error"]["code"] == "invalid_arguments"


BAD_FRAMES: list[tuple[str, str | bytes, str]] = [
    ("not json", "{nope", "malformed_json"),
    ("not an object", "[1, 2]", "invalid_frame"),
    ("unknown op", '{"op": "dance"}', "unknown_op"),
    ("no op", '{"task_ids": ["a"]}', "unknown_op"),
    ("task ids not a list", '{"op": "subscribe", "task_ids": "abc"}', "invalid_frame"),
    ("task ids with numbers", '{"op": "subscribe", "task_ids": [1, 2]}', "invalid_frame"),
    ("all that is not true", '{"op": "subscribe", "all": "yes"}', "invalid_frame"),
    ("names not a list", '{"op": "subscribe", "all": true, "names": "x"}', "invalid_frame"),
    ("cursor that is not one", '{"op": "subscribe", "all": true, "since": "yesterday"}',
     "invalid_cursor"),
    ("binary frame", b"\x00\x01", "invalid_frame"),
    ("huge frame", '{"op": "ping", "pad": "' + "x" * 70_000 + '"}', "frame_too_large"),
]


@pytest.mark.parametrize(("frame", "code"), [c[1:] for c in BAD_FRAMES],
                         ids=[c[0] for c in BAD_FRAMES])
async def test_a_bad_websocket_frame_gets_an_error_frame_and_the_connection_stays_open(
    rabbitmq: Settings, frame: str | bytes, code: str
) -> None:
    async with running_gateway(rabbitmq) as gw, gw.ws() as ws:
        await ws.send(frame)
        reply = await ws.receive(10)
        assert reply["type"] == "error"
        assert reply["error"]["code"] == code
        assert reply["error"]["message"]
        await ws.send({"op": "ping"})
        assert await ws.receive(10) == {"type": "pong"}


async def test_unsubscribing_stops_the_events_of_that_task(rabbitmq: Settings) -> None:
    async with running_gateway(rabbitmq) as gw, gw.ws() as ws:
        await ws.send({"op": "subscribe", "task_ids": ["t-1", "t-2"]})
        assert await ws.receive() == {"type": "subscribed", "task_ids": ["t-1", "t-2"]}
        await ws.send({"op": "unsubscribe", "task_ids": ["t-1"]})
        assert await ws.receive() == {"type": "unsubscribed", "task_ids": ["t-1"]}
        hub = gw.app[HUB_KEY]
        assert hub.subscriptions == 1


# --- the broker going away ------------------------------------------------------------


@pytest_asyncio.fixture
async def proxied(rabbitmq: Settings) -> AsyncIterator[tuple[Gateway, BrokerProxy]]:
    """A gateway whose broker connection runs through a proxy the test controls."""
    target = urlsplit(rabbitmq.rabbitmq_url)
    proxy = BrokerProxy(target.hostname or "127.0.0.1", target.port or 5672)
    await proxy.start()
    netloc = f"{target.username}:{target.password}@127.0.0.1:{proxy.port}"
    url = urlunsplit((target.scheme, netloc, target.path, "", ""))
    settings = rabbitmq.model_copy(update={"rabbitmq_url": url,
                                           "management_url": rabbitmq.management_api,
                                           "publish_outcome_timeout": 3.0})
    try:
        async with running_gateway(settings) as gateway:
            yield gateway, proxy
    finally:
        await proxy.stop()


async def _post_distance(gw: Gateway) -> tuple[int, dict[str, str], Any, float]:
    started = time.monotonic()
    async with gw.http.post(f"{gw.url}/distance/?x=3&y=4") as resp:
        return resp.status, dict(resp.headers), await resp.json(), time.monotonic() - started


async def _wait_status(gw: Gateway, path: str, status: int, timeout: float = 30) -> None:
    async def answer() -> int:
        async with gw.http.get(f"{gw.url}{path}") as resp:
            return resp.status

    await eventually(answer, timeout, f"{path} answering {status}",
                     until=lambda answered: answered == status)


async def test_with_the_broker_gone_submissions_get_503_with_retry_after_and_recover(
    proxied: tuple[Gateway, BrokerProxy],
) -> None:
    gw, proxy = proxied
    assert (await _post_distance(gw))[0] == 202

    await proxy.go_down()
    await _wait_status(gw, "/readyz", 503)
    status, headers, doc, _elapsed = await _post_distance(gw)
    assert status == 503
    assert doc["error"]["code"] == "broker_unavailable"
    assert int(headers["Retry-After"]) >= 1
    async with gw.http.get(f"{gw.url}/healthz") as resp:
        assert resp.status == 200  # alive, just not ready

    await proxy.come_back()
    await _wait_status(gw, "/readyz", 200)
    status, _headers, doc, _elapsed = await _post_distance(gw)
    assert status == 202, doc


async def test_a_publish_the_broker_never_confirms_is_an_unknown_outcome_not_a_503_nor_a_202(
    proxied: tuple[Gateway, BrokerProxy],
) -> None:
    gw, proxy = proxied
    proxy.blackhole()  # requests reach RabbitMQ (it may keep them); confirms never come back
    status, headers, doc, _elapsed = await _post_distance(gw)
    assert status == 504, doc
    assert doc["error"]["code"] == "publish_outcome_unknown"
    assert doc["error"]["details"]["task_id"]
    assert "Retry-After" in headers


async def test_a_revoke_the_broker_never_confirms_is_a_503_with_retry_after(
    proxied: tuple[Gateway, BrokerProxy],
) -> None:
    gw, proxy = proxied
    task_id = await gw.submit("sleep", kwargs={"seconds": 2})
    proxy.blackhole()
    async with gw.http.delete(f"{gw.url}/tasks/{task_id}") as resp:
        doc = await resp.json()
        assert resp.status == 503, doc
        assert doc["error"]["code"] == "broker_unavailable"
        assert "Retry-After" in resp.headers


async def test_a_websocket_open_across_a_broker_outage_keeps_receiving_events_once(
    proxied: tuple[Gateway, BrokerProxy], worker: Proc, rabbitmq: Settings,
) -> None:
    gw, proxy = proxied
    async with gw.ws() as ws:
        await ws.send({"op": "subscribe", "all": True})
        assert await ws.receive() == {"type": "subscribed", "all": True}
        before = await gw.submit_distance()
        frames = await ws.receive_until(terminal(before))

        await proxy.go_down()
        await _wait_status(gw, "/readyz", 503)
        await proxy.come_back()
        await _wait_status(gw, "/readyz", 200)

        after = await gw.submit_distance(6, 8)
        frames += await ws.receive_until(terminal(after))
        # an event repeated after the reconnect comes before a marker sent now
        marker = await publish_marker(rabbitmq)
        frames += await ws.receive_until(lambda f: f.get("task_id") == marker)
        frames = [f for f in frames if f.get("task_id") != marker]
    cursors = [int(f["cursor"]) for f in events_of(frames)]
    assert cursors == sorted(set(cursors)), "an event was repeated after the reconnect"
    finished = [f for f in events_of(frames, after) if f["state"] == "succeeded"]
    assert [f["result"] for f in finished] == [10.0]
