"""aiohttp's connection internals, for the WebSocket one-write-per-wake-up (``gateway.ws``).

What it touches, written against aiohttp 3.14.5 (pinned in ``pyproject.toml``):
a request's ``transport`` and ``writer`` (``aiohttp.http_writer.StreamWriter``,
whose ``drain()`` waits while the socket's buffer is full), written to beside
the ``WebSocketResponse`` that owns them. That is sound only while aiohttp's
WebSocket writer keeps no state between frames a raw write could break: no
permessage-deflate (``gateway.ws`` turns it off) and no masking (a server's
frames are unmasked); the frames themselves come from ``gateway.ws_frames``.

Why: aiohttp's ``send_frame`` writes each frame on its own, a ``send`` per frame
and subscriber (59 % of the gateway's CPU under the fan-out burst). Joining a
connection's queued frames into one write took 1,000 clients and 500 tasks
from 14.4 to 7.0 us of gateway CPU a frame (bench/RESULTS.md, fan-out).

``tests/unit/test_adapters_aiohttp.py`` fails, naming aiohttp and its version,
when an upgrade changes any of this: re-measure, then update this module.
"""

from __future__ import annotations

from aiohttp import web

PINNED = {"aiohttp": "3.14.5"}


class RawFrameWriter:
    """Writes complete WebSocket frames straight onto one request's connection."""

    def __init__(self, request: web.BaseRequest) -> None:
        self._transport = request.transport
        self._writer = request.writer

    def closing(self) -> bool:
        """Whether the connection is gone or going (nothing more may be written)."""
        return self._transport is None or self._transport.is_closing()

    async def write(self, frames: bytes) -> None:
        """Write ``frames``; waits only while the socket's buffer is full."""
        assert self._transport is not None
        self._transport.write(frames)
        await self._writer.drain()
