"""Hostile client input: never a 500 on a REST route, never a dead WebSocket.

Every case goes through a real gateway (aiohttp on a real port, real broker) with a
real HTTP client, a real WebSocket client, or raw bytes on a socket where no client
would send them. REST answers 400/413/415/422 in the contract's error shape; a bad
WebSocket frame gets an ``error`` frame and the same connection still answers a ping.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import pytest_asyncio

from broker.settings import Settings
from gateway.tasks_api import MAX_COUNTDOWN
from tests.support.gateway import Gateway, running_gateway
from tests.support.processes import Proc

# One gateway per module (and so one event loop) serves every case.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

JSON = {"Content-Type": "application/json"}
TOKEN = "hostile-input-test-token-0123456789"
DEEP = b'{"args": ' + b"[" * 1000 + b"]" * 1000 + b"}"
HUGE_INT = b"9" * 5000


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw(rabbitmq: Settings) -> AsyncIterator[Gateway]:
    async with running_gateway(rabbitmq) as gateway:
        yield gateway


def _beyond(days: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=MAX_COUNTDOWN, days=days)).isoformat()


# id, method, path, body, status, code
HOSTILE_REQUESTS: list[tuple[str, str, str, bytes | None, int, str]] = [
    ("json nested 1000 deep", "POST", "/tasks/calculate_distance", DEEP, 400, "malformed_json"),
    ("json nested 100 deep", "POST", "/tasks/sleep",
     b'{"kwargs": {"seconds": ' + b"[" * 100 + b"]" * 100 + b"}}", 400, "malformed_json"),
    ("integer of 5000 digits in args", "POST", "/tasks/calculate_distance",
     b'{"args": [' + HUGE_INT + b", 1]}", 400, "malformed_json"),
    ("integer of 5000 digits in kwargs", "POST", "/tasks/sleep",
     b'{"kwargs": {"seconds": ' + HUGE_INT + b"}}", 400, "malformed_json"),
    ("integer of 5000 digits in options", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "options": {"priority": ' + HUGE_INT + b"}}", 400, "malformed_json"),
    ("integer of 5000 digits to memory-leak", "POST", "/memory-leak/",
     b'{"kwargs": {"seconds": ' + HUGE_INT + b"}}", 400, "malformed_json"),
    ("NaN literal", "POST", "/tasks/calculate_distance", b'{"args": [NaN, 1]}', 400,
     "malformed_json"),
    ("Infinity literal in options", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "options": {"countdown": Infinity}}', 400, "malformed_json"),
    ("-Infinity literal", "POST", "/memory-leak/", b'{"kwargs": {"seconds": -Infinity}}', 400,
     "malformed_json"),
    ("number that overflows to infinity", "POST", "/tasks/calculate_distance",
     b'{"args": [1e400, 1]}', 400, "malformed_json"),
    ("dead letters cursor nested 1000 deep", "GET",
     "/dead-letters?after=" + base64.urlsafe_b64encode(b"[" * 1000 + b"]" * 1000).decode(), None,
     422, "invalid_arguments"),
    ("duplicate keys", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "args": [6, 8]}', 400, "malformed_json"),
    ("duplicate keys nested", "POST", "/tasks/sleep",
     b'{"kwargs": {"seconds": 0, "seconds": 1}}', 400, "malformed_json"),
    ("lone surrogate in an idempotency key", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "options": {"idempotency_key": "\\ud800"}}', 400, "malformed_json"),
    ("lone surrogate as a key", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "kwargs": {"\\udfff": 1}}', 400, "malformed_json"),
    ("expires of 1e17 seconds", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "options": {"expires": 1e17}}', 422, "invalid_body"),
    ("expires in year 1 east of utc", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "options": {"expires": "0001-01-01T00:00:00+01:00"}}', 422,
     "invalid_body"),
    ("eta in year 1 east of utc", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "options": {"eta": "0001-01-01T00:00:00+01:00"}}', 422,
     "invalid_body"),
    ("eta in year 9999 west of utc", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "options": {"eta": "9999-12-31T23:00:00-05:00"}}', 422,
     "invalid_body"),
]

# Refused with a 4xx before this file existed too; kept so that every route and query
# string named in the issue stays covered.
STILL_REFUSED: list[tuple[str, str, str, bytes | None, int, str]] = [
    ("invalid utf-8", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "options": {"idempotency_key": "\xff\xfe"}}', 400, "malformed_json"),
    ("a json string as the body", "POST", "/tasks/calculate_distance", b'"args"', 400,
     "invalid_body"),
    ("a json number as the body", "POST", "/memory-leak/", HUGE_INT[:100], 400,
     "invalid_body"),
    ("expires of a 400-digit integer", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "options": {"expires": 1' + b"0" * 400 + b"}}", 422, "invalid_body"),
    ("negative expires", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "options": {"expires": -1}}', 422, "invalid_body"),
    ("eta as a huge number", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "options": {"eta": 1e17}}', 422, "invalid_body"),
    ("countdown of 1e17", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "options": {"countdown": 1e17}}', 422, "invalid_body"),
    ("negative priority", "POST", "/tasks/calculate_distance",
     b'{"args": [3, 4], "options": {"priority": -1}}', 422, "invalid_body"),
    ("distance with a 5000-digit x", "POST", "/distance/?x=" + "9" * 5000 + "&y=1", None, 422,
     "invalid_arguments"),
    ("distance with NaN", "POST", "/distance/?x=NaN&y=1", None, 422, "invalid_arguments"),
    ("distance with invalid utf-8", "POST", "/distance/?x=%FF&y=%ED%A0%80", None, 422,
     "invalid_arguments"),
    ("dead letters with a 5000-digit limit", "GET", "/dead-letters?limit=" + "9" * 5000, None,
     422, "invalid_arguments"),
    ("dead letters with a negative limit", "GET", "/dead-letters?limit=-1", None, 422,
     "invalid_arguments"),
    ("dead letters with a surrogate queue", "GET", "/dead-letters?queue=%ED%A0%80", None, 404,
     "queue_not_found"),
    ("dead letters with a surrogate reason", "GET", "/dead-letters?reason=%ED%A0%80", None, 422,
     "invalid_arguments"),
    ("dead letters with a bad cursor", "GET", "/dead-letters?after=" + "9" * 5000, None, 422,
     "invalid_arguments"),
    ("purge with a surrogate queue", "DELETE", "/dead-letters?queue=%ED%A0%80", None, 404,
     "queue_not_found"),
    ("purge without a queue", "DELETE", "/dead-letters", None, 422, "invalid_arguments"),
    ("replay of a surrogate id", "POST", "/dead-letters/%ED%A0%80/replay", None, 404,
     "dead_letter_not_found"),
    ("status of a surrogate id", "GET", "/tasks/%ED%A0%80", None, 404, "task_not_found"),
    ("revoke of a 5000-digit id", "DELETE", "/tasks/" + "9" * 5000, None, 404,
     "task_not_found"),
]


async def _assert_refused(gw: Gateway, method: str, path: str, body: bytes | None,
                          status: int, code: str) -> None:
    headers = JSON if body is not None else {}
    async with gw.http.request(method, f"{gw.url}{path}", headers=headers, data=body) as resp:
        doc = await resp.json()
        assert resp.status == status, doc
    assert set(doc) == {"error"}, doc
    assert doc["error"]["code"] == code, doc
    assert isinstance(doc["error"]["message"], str)
    assert doc["error"]["message"]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"),
                         [case[1:] for case in HOSTILE_REQUESTS],
                         ids=[case[0] for case in HOSTILE_REQUESTS])
async def test_hostile_input_on_a_rest_route_gets_a_4xx_in_the_contracts_shape_not_a_500(
    gw: Gateway, method: str, path: str, body: bytes | None, status: int, code: str,
) -> None:
    await _assert_refused(gw, method, path, body, status, code)


@pytest.mark.parametrize(("method", "path", "body", "status", "code"),
                         [case[1:] for case in STILL_REFUSED],
                         ids=[case[0] for case in STILL_REFUSED])
async def test_other_hostile_input_on_every_rest_route_stays_a_4xx_in_the_contracts_shape(
    gw: Gateway, method: str, path: str, body: bytes | None, status: int, code: str,
) -> None:
    await _assert_refused(gw, method, path, body, status, code)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_does_not_decompress_is_a_400_not_a_500(
    gw: Gateway, encoding: str,
) -> None:
    # aiohttp drops the connection after a payload error: this request gets its own.
    headers = {**JSON, "Content-Encoding": encoding, "Connection": "close"}
    async with gw.http.post(f"{gw.url}/tasks/calculate_distance", headers=headers,
                            data=b'{"args": [3, 4]} is not compressed') as resp:
        doc = await resp.json()
        assert resp.status == 400, doc
    assert doc["error"]["code"] == "malformed_body"
    assert encoding in doc["error"]["message"]


@pytest.mark.parametrize("field", ["eta", "expires"])
async def test_a_time_beyond_delayed_deliverys_reach_is_a_422_naming_the_field(
    gw: Gateway, field: str,
) -> None:
    body = {"args": [3, 4], "options": {field: _beyond(days=1)}}
    async with gw.http.post(f"{gw.url}/tasks/calculate_distance", json=body) as resp:
        doc = await resp.json()
        assert resp.status == 422, doc
    assert doc["error"]["code"] == "invalid_body"
    (detail,) = doc["error"]["details"]
    assert detail["loc"] == ["options", field]
    assert f"{field} is more than {MAX_COUNTDOWN} seconds" in detail["msg"]


async def test_an_expiry_in_seconds_beyond_the_bound_is_a_422_naming_options_expires(
    gw: Gateway,
) -> None:
    body = {"args": [3, 4], "options": {"expires": MAX_COUNTDOWN + 1}}
    async with gw.http.post(f"{gw.url}/tasks/calculate_distance", json=body) as resp:
        doc = await resp.json()
        assert resp.status == 422, doc
    assert [d["loc"] for d in doc["error"]["details"]] == [["options", "expires"]]


async def test_times_just_inside_the_bound_are_still_accepted(gw: Gateway, worker: Proc) -> None:
    # The worker declares Celery's delayed-delivery exchanges that an eta publishes to.
    inside = {"eta": _beyond(days=-1)}, {"expires": _beyond(days=-1)}, {"expires": 3600.5}
    for options in inside:
        async with gw.http.post(f"{gw.url}/tasks/calculate_distance",
                                json={"args": [3, 4], "options": options}) as resp:
            assert resp.status == 202, (options, await resp.json())


async def test_every_hostile_request_left_the_gateway_serving(gw: Gateway) -> None:
    for _case, method, path, body, _status, _code in HOSTILE_REQUESTS:
        async with gw.http.request(method, f"{gw.url}{path}", data=body,
                                   headers=JSON if body is not None else {}) as resp:
            assert resp.status < 500, (path, await resp.text())
    assert (await gw.submit("calculate_distance", args=[3, 4]))


# --- WebSocket frames ---------------------------------------------------------------------

HOSTILE_FRAMES: list[tuple[str, str, str]] = [
    ("json nested 1000 deep", '{"op": "ping", "x": ' + "[" * 1000 + "]" * 1000 + "}",
     "malformed_json"),
    ("json nested 100 deep", '{"op": "subscribe", "task_ids": ' + "[" * 100 + "]" * 100 + "}",
     "malformed_json"),
    ("integer of 5000 digits", '{"op": "ping", "n": ' + "9" * 5000 + "}", "malformed_json"),
    ("NaN literal", '{"op": "ping", "n": NaN}', "malformed_json"),
    ("Infinity literal", '{"op": "ping", "n": -Infinity}', "malformed_json"),
    ("duplicate keys", '{"op": "subscribe", "op": "ping"}', "malformed_json"),
    ("lone surrogate in a task id", '{"op": "subscribe", "task_ids": ["\\ud800"]}',
     "malformed_json"),
    ("since with 5000 digits", '{"op": "subscribe", "all": true, "since": "' + "9" * 5000 + '"}',
     "invalid_cursor"),
    ("since of a superscript digit", '{"op": "subscribe", "all": true, "since": "\u00b2"}',
     "invalid_cursor"),
    ("since of fullwidth digits", '{"op": "subscribe", "all": true, "since": "\uff11\uff12"}',
     "invalid_cursor"),
    ("since as a huge integer", '{"op": "subscribe", "all": true, "since": ' + "9" * 5000 + "}",
     "malformed_json"),
    ("since as NaN", '{"op": "subscribe", "all": true, "since": NaN}', "malformed_json"),
]


# Refused with an error frame before this file existed too: kept as guards.
STILL_REFUSED_FRAMES: list[tuple[str, str, str]] = [
    ("a json string", '"ping"', "invalid_frame"),
    ("a json null", "null", "invalid_frame"),
    ("since as a number", '{"op": "subscribe", "all": true, "since": 12}', "invalid_cursor"),
    ("since negative", '{"op": "subscribe", "all": true, "since": "-1"}', "invalid_cursor"),
]


@pytest.mark.parametrize(("frame", "code"),
                         [case[1:] for case in HOSTILE_FRAMES + STILL_REFUSED_FRAMES],
                         ids=[case[0] for case in HOSTILE_FRAMES + STILL_REFUSED_FRAMES])
async def test_a_hostile_websocket_frame_gets_an_error_frame_and_the_socket_still_pongs(
    gw: Gateway, frame: str, code: str,
) -> None:
    async with gw.ws() as ws:
        await ws.send(frame)
        reply = await ws.receive(10)
        assert reply["type"] == "error", reply
        assert reply["error"]["code"] == code, reply
        assert reply["error"]["message"]
        await ws.send({"op": "ping"})
        assert await ws.receive(10) == {"type": "pong"}


async def test_one_socket_survives_every_hostile_frame_in_a_row(gw: Gateway) -> None:
    async with gw.ws() as ws:
        for _case, frame, code in HOSTILE_FRAMES:
            await ws.send(frame)
            reply = await ws.receive(10)
            assert reply.get("error", {}).get("code") == code, (_case, reply)
        await ws.send({"op": "ping"})
        assert await ws.receive(10) == {"type": "pong"}


async def test_invalid_utf8_in_a_text_frame_closes_with_1007_as_rfc_6455_requires(
    gw: Gateway,
) -> None:
    # The one bad frame that may not leave the connection open: RFC 6455 section 8.1 says
    # to fail it, and aiohttp's reader does so before any handler sees the frame.
    async with gw.ws() as ws:
        assert ws.conn is not None
        await ws.conn.send_frame(b'{"op": "ping", "x": "\xff"}', aiohttp.WSMsgType.TEXT)
        message = await ws.conn.receive(10)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert message.data == aiohttp.WSCloseCode.INVALID_TEXT
    async with gw.ws() as ws:  # and the gateway serves the next client
        await ws.send({"op": "ping"})
        assert await ws.receive(10) == {"type": "pong"}


# --- auth -----------------------------------------------------------------------------------


async def _raw_request(url: str, request: bytes, timeout: float = 10) -> bytes:
    """Bytes no HTTP client library would send, straight onto a socket."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), timeout)
    finally:
        writer.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def guarded(rabbitmq: Settings) -> AsyncIterator[Gateway]:
    async with running_gateway(rabbitmq.model_copy(update={"auth_token": TOKEN})) as gateway:
        yield gateway


@pytest.mark.parametrize("path", ["/tasks/some-id", "/ws"])
async def test_an_undecodable_bearer_token_is_a_401_not_a_500(
    guarded: Gateway, path: str,
) -> None:
    response = await _raw_request(guarded.url, (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
        + b"Authorization: Bearer \xff\xfe" + TOKEN.encode()[2:] + b"\r\n\r\n"))
    status_line = response.split(b"\r\n", 1)[0]
    assert status_line.split()[1] == b"401", response[:300]
    body = json.loads(response.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "unauthorized"


async def test_a_surrogate_token_in_the_websocket_query_stays_a_401(
    guarded: Gateway,
) -> None:
    async with guarded.http.get(f"{guarded.url}/ws?token=%ED%A0%80%ED%A0%80") as resp:
        assert resp.status == 401, await resp.text()
        assert (await resp.json())["error"]["code"] == "unauthorized"
