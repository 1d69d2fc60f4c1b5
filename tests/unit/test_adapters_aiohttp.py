"""gateway.ws_transport still holds for the installed aiohttp: frames written straight onto a
WebSocket request's connection arrive as the messages ``send_json`` would have sent.
(tests/unit/test_ws_frames.py compares the frames' bytes with aiohttp's own.)"""

from __future__ import annotations

import inspect
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from gateway import ws_transport
from gateway.ws_frames import json_frame
from gateway.ws_transport import RawFrameWriter
from tests.unit.adapter_pins import assert_pinned, changed

DOCS: list[dict[str, Any]] = [{"type": "event", "n": n, "text": "ü" * n} for n in (1, 200, 70000)]


def test_aiohttp_is_the_version_the_adapter_was_written_against() -> None:
    assert_pinned(ws_transport)


def test_a_request_still_exposes_its_transport_and_writer() -> None:
    for name in ("transport", "writer"):
        assert isinstance(inspect.getattr_static(web.BaseRequest, name), property), changed(
            "aiohttp", ws_transport, f"BaseRequest.{name}")


async def test_frames_written_in_one_go_arrive_as_separate_messages() -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        connection = RawFrameWriter(request)
        assert not connection.closing()
        await connection.write(b"".join(json_frame(doc) for doc in DOCS))
        await ws.receive()  # until the client closes
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    async with TestClient(TestServer(app)) as client:
        ws = await client.ws_connect("/ws")
        received = [await ws.receive(timeout=10) for _ in DOCS]
        await ws.close()
    problem = changed("aiohttp", ws_transport, "writing to a WebSocket request's transport")
    assert [m.type for m in received] == [WSMsgType.TEXT] * len(DOCS), problem
    assert [m.json() for m in received] == DOCS, problem
