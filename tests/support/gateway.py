"""A real gateway (aiohttp server on a real port) and a real WebSocket client for tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from bench.inprocess_gateway import serving_gateway
from broker.settings import Settings
from tests.support.catalog import announce_builtin_tasks
from tests.support.eventually import eventually


@dataclass
class Gateway:
    app: web.Application
    url: str
    http: aiohttp.ClientSession

    async def wait_ready(self, timeout: float = 30) -> None:
        async def readyz() -> tuple[int, Any]:
            async with self.http.get(f"{self.url}/readyz") as resp:
                return resp.status, await resp.json()

        await eventually(readyz, timeout, "the gateway ready", until=lambda seen: seen[0] == 200)

    async def submit_distance(self, x: float = 3, y: float = 4) -> str:
        async with self.http.post(f"{self.url}/distance/", params={"x": x, "y": y}) as resp:
            body = await resp.json()
            assert resp.status == 202, body
            return str(body["task_id"])

    async def submit(self, name: str, **body: Any) -> str:
        async with self.http.post(f"{self.url}/tasks/{name}", json=body) as resp:
            doc = await resp.json()
            assert resp.status == 202, doc
            return str(doc["task_id"])

    async def task(self, task_id: str) -> tuple[int, Any]:
        async with self.http.get(f"{self.url}/tasks/{task_id}") as resp:
            return resp.status, await resp.json()

    async def wait_state(self, task_id: str, states: set[str], timeout: float = 60) -> Any:
        _, doc = await eventually(
            lambda: self.task(task_id), timeout, f"task {task_id} in {states}",
            until=lambda seen: seen[0] == 200 and seen[1]["state"] in states)
        return doc

    def ws(self, query: str = "") -> WsClient:
        return WsClient(self.http, f"{self.url.replace('http', 'ws', 1)}/ws{query}")


@asynccontextmanager
async def running_gateway(settings: Settings, *, ready: bool = True,
                          builtin_catalog: bool | None = None) -> AsyncIterator[Gateway]:
    """A gateway on a free port; ready (``/readyz``: catalog and events replayed) unless
    ``ready`` is False. ``builtin_catalog`` (default: when ``ready``) first announces
    the built-in tasks in the vhost (``tests.support.catalog``), standing in for a
    worker, so submissions of them are 202 without one; a real worker's announcement
    of the same tasks agrees with it."""
    if builtin_catalog if builtin_catalog is not None else ready:
        await announce_builtin_tasks(settings)
    async with aiohttp.ClientSession() as http, serving_gateway(settings) as (app, url):
        gateway = Gateway(app, url, http)
        if ready:
            await gateway.wait_ready()
        yield gateway


class WsClient:
    """``async with gateway.ws() as ws:`` — frames in, frames out, every wait bounded."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http = http
        self.url = url
        self.conn: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> WsClient:
        self.conn = await self._http.ws_connect(self.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def send(self, frame: Any) -> None:
        assert self.conn is not None
        if isinstance(frame, str | bytes):
            await (self.conn.send_str(frame) if isinstance(frame, str)
                   else self.conn.send_bytes(frame))
        else:
            await self.conn.send_json(frame)

    async def receive(self, timeout: float = 30) -> dict[str, Any]:
        assert self.conn is not None
        # Bounded here: aiohttp restarts receive(timeout) after every ping it
        # answers, and the gateway pings every 30 s, so longer waits never ended.
        async with asyncio.timeout(timeout):
            message = await self.conn.receive()
        if message.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"expected a text frame, got {message.type}: {message.data!r}")
        frame: dict[str, Any] = json.loads(message.data)
        return frame

    async def receive_until(self, done: Callable[[dict[str, Any]], bool],
                            timeout: float = 60) -> list[dict[str, Any]]:
        """Frames up to and including the first for which ``done`` is true."""
        frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s; got {frames}")
            frame = await self.receive(remaining)
            frames.append(frame)
            if done(frame):
                return frames

    async def drain(self, timeout: float = 30) -> list[dict[str, Any]]:
        """Every frame the gateway queued for this socket before it read a ping:
        the pong is queued behind them. Which events those are is for the caller
        to pin down first (e.g. the gateway's record of a later task)."""
        await self.send({"op": "ping"})
        frames = await self.receive_until(lambda f: f.get("type") == "pong", timeout)
        return frames[:-1]


def terminal(task_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: (f.get("type") == "event" and f.get("task_id") == task_id
                      and f.get("state") in ("succeeded", "dead_lettered", "revoked"))


def events_of(frames: list[dict[str, Any]], task_id: str | None = None) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("type") == "event"
            and (task_id is None or f["task_id"] == task_id)]
