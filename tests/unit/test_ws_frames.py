"""gateway.ws_frames writes exactly the bytes aiohttp's ws.send_json wrote before."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp._websocket.writer import WebSocketWriter

from broker.events import TaskEvent, TaskState
from gateway.hub import event_frame
from gateway.ws_frames import json_frame


class CapturingTransport:
    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return False


class Protocol:
    _paused = False


async def sent_by_aiohttp(doc: Any) -> bytes:
    """What ``WebSocketResponse.send_json(doc)`` writes: ``json.dumps``, a text frame
    from aiohttp's own server-side writer (no mask, no compression)."""
    transport = CapturingTransport()
    writer = WebSocketWriter(Protocol(), transport, use_mask=False)  # type: ignore[arg-type]
    await writer.send_frame(json.dumps(doc).encode("utf-8"), WSMsgType.TEXT)
    return transport.written


@pytest.mark.parametrize("size", [0, 100, 125, 126, 1_000, 65_535, 65_536, 200_000])
async def test_a_json_frame_is_byte_for_byte_what_send_json_wrote(size: int) -> None:
    doc = {"type": "event", "progress": "x" * size, "name": "naïve \"ü\""}
    assert json_frame(doc) == await sent_by_aiohttp(doc)


async def test_an_event_frame_is_the_api_event_frame_send_json_wrote() -> None:
    succeeded = TaskEvent("t1", "calculate_distance", TaskState.SUCCEEDED,
                          datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), result={"d": [5.0, None]},
                          retries=1, cursor=7)
    assert event_frame(succeeded) == await sent_by_aiohttp(succeeded.to_client())
