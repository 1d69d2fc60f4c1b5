"""``GET /ws``: subscribe to task events.

One reader loop handles client frames; one sender task drains the subscriber's
bounded queue of encoded frames (``gateway.hub``), everything queued at each
wake-up. A bad frame gets an ``error`` frame and the connection stays
open. The subscriber is always unregistered in ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from gateway.auth import check_token
from gateway.events_reader import read_stream
from gateway.hub import Hub, Subscriber, event_frame
from gateway.jsonbody import JsonInputError, decode_json
from gateway.keys import BROKER_KEY, HUB_KEY, SETTINGS_KEY
from gateway.ws_frames import json_frame
from gateway.ws_transport import RawFrameWriter

log = structlog.get_logger(__name__)

MAX_FRAME_CHARS = 64 * 1024
MAX_IDS_PER_FRAME = 1000
HEARTBEAT_SECONDS = 30.0
# Cursors are stream offsets (64 bits) scaled by a small factor.
_CURSOR = re.compile(r"[0-9]{1,30}")

routes = web.RouteTableDef()


class FrameError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _error_frame(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message}}


def _task_ids(frame: dict[str, Any]) -> list[str]:
    ids = frame.get("task_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise FrameError("invalid_frame", "'task_ids' must be a list of task id strings")
    if len(ids) > MAX_IDS_PER_FRAME:
        raise FrameError("invalid_frame", f"at most {MAX_IDS_PER_FRAME} task ids per frame")
    return ids


def _names(frame: dict[str, Any]) -> frozenset[str] | None:
    names = frame.get("names")
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise FrameError("invalid_frame", "'names' must be a list of task names")
    return frozenset(names)


def _since(frame: dict[str, Any]) -> int | None:
    since = frame.get("since")
    if since is None:
        return None
    # ASCII digits only, and a bounded count: str.isdigit() also takes '²', which int()
    # refuses, and int() refuses more than 4,300 digits.
    if isinstance(since, str) and _CURSOR.fullmatch(since):
        return int(since)
    raise FrameError("invalid_cursor", "'since' must be a cursor from an earlier event")


class Session:
    """The server side of one WebSocket connection."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse,
                 subscriber: Subscriber) -> None:
        self.app = request.app
        self.request = request
        self.hub: Hub = request.app[HUB_KEY]
        self.ws = ws
        self.subscriber = subscriber
        self._backfills: set[asyncio.Task[None]] = set()

    def reply(self, frame: dict[str, Any]) -> None:
        self.subscriber.offer(json_frame(frame))

    def handle_text(self, text: str) -> None:
        if len(text) > MAX_FRAME_CHARS:
            raise FrameError("frame_too_large",
                             f"frames are limited to {MAX_FRAME_CHARS} characters")
        try:
            frame = decode_json(text)
        except JsonInputError as exc:
            raise FrameError(exc.code, f"frame is refused: {exc.message}") from None
        if not isinstance(frame, dict):
            raise FrameError("invalid_frame", "frame must be a JSON object")
        op = frame.get("op")
        if op == "ping":
            self.reply({"type": "pong"})
        elif op == "subscribe":
            self.subscribe(frame)
        elif op == "unsubscribe":
            self.unsubscribe(frame)
        else:
            raise FrameError("unknown_op", "'op' must be one of subscribe, unsubscribe, ping")

    def subscribe(self, frame: dict[str, Any]) -> None:
        if frame.get("all") is True:
            names, since = _names(frame), _since(frame)
            # Confirm first: the replayed events follow the confirmation.
            self.reply({"type": "subscribed", "all": True})
            until = self.hub.subscribe_all(self.subscriber, names, since)
            if until is not None and since is not None:
                self._start_backfill(since, until)
            return
        if "all" in frame and frame["all"] is not True:
            raise FrameError("invalid_frame", "'all' must be true when given")
        ids = _task_ids(frame)
        self.reply({"type": "subscribed", "task_ids": ids})
        self.hub.subscribe_tasks(self.subscriber, ids)

    def unsubscribe(self, frame: dict[str, Any]) -> None:
        if frame.get("all") is True:
            self.hub.unsubscribe_all(self.subscriber)
        else:
            self.hub.unsubscribe_tasks(self.subscriber, _task_ids(frame))
        self.reply({"type": "unsubscribed", **{k: frame[k] for k in ("all", "task_ids")
                                                if k in frame}})

    def _start_backfill(self, since: int, until: int) -> None:
        task = asyncio.create_task(self._backfill(since, until))
        self._backfills.add(task)
        task.add_done_callback(self._backfills.discard)

    async def _backfill(self, since: int, until: int) -> None:
        """Replay from the stream what the in-memory ring no longer holds."""
        connection = self.app[BROKER_KEY].connection
        try:
            if connection is None:
                raise ConnectionError("not connected to the broker")
            async for event in read_stream(connection, since, until):
                if self.subscriber.wants(event):
                    self.subscriber.offer(event_frame(event))
        except Exception as exc:
            log.warning("ws.backfill_failed", error=str(exc))
            self.reply(_error_frame("replay_failed",
                                    "could not replay from the stream; reconnect with 'since'"))
            self.subscriber.overflowed = True  # close: the client must not assume completeness
        finally:
            self.hub.finish_backfill(self.subscriber)

    async def send_loop(self) -> None:
        """Write what is queued, all of it in one write per wake-up (the frames are
        complete WebSocket frames: ``gateway.ws_frames``; the write is
        ``gateway.ws_transport``'s, see there for what it buys)."""
        subscriber, ws = self.subscriber, self.ws
        frames = subscriber.frames
        connection = RawFrameWriter(self.request)
        while True:
            await subscriber.wait()
            if frames:
                if ws.closed or connection.closing():
                    return  # closing: aiohttp's close frame must be the last one
                batch = b"".join(frames)
                frames.clear()
                await connection.write(batch)
            if subscriber.overflowed:
                await ws.close(code=WSCloseCode.TRY_AGAIN_LATER,
                               message=b"too far behind; reconnect with since")
                return

    async def close(self) -> None:
        for task in list(self._backfills):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@routes.get("/ws")
async def websocket(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS_KEY]
    check_token(request, allow_query=True)
    # Frames above max_body_bytes are refused by aiohttp itself (close 1009);
    # frames above MAX_FRAME_CHARS get an error frame and the connection stays.
    # No permessage-deflate (browsers offer it): a compressor costs each connection
    # about 90 KB and every frame about 5 us of zlib per subscriber, where the
    # frames are small JSON encoded once for all of them (gateway.hub).
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, compress=False,
                               max_msg_size=settings.max_body_bytes)
    await ws.prepare(request)
    hub = request.app[HUB_KEY]
    subscriber = hub.connect(settings.ws_send_queue)
    session = Session(request, ws, subscriber)
    sender = asyncio.create_task(session.send_loop())
    try:
        initial = [i for i in request.query.getall("task_id", []) if i]
        if initial:
            session.reply({"type": "subscribed", "task_ids": initial})
            hub.subscribe_tasks(subscriber, initial)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                try:
                    session.handle_text(message.data)
                except FrameError as exc:
                    session.reply(_error_frame(exc.code, exc.message))
            elif message.type == WSMsgType.BINARY:
                session.reply(_error_frame("invalid_frame", "send JSON in text frames"))
            elif message.type == WSMsgType.ERROR:
                break
            if sender.done():
                break
    finally:
        hub.disconnect(subscriber)
        await session.close()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
    return ws
