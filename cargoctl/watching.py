"""``cargoctl watch`` (and ``submit --wait``): follow tasks over the gateway's WebSocket.

Order of work, for the ids given:

1. ``GET /tasks/{id}`` for each. 200: the task is known (its document is its
   first row). 404 ``task_not_found``: the gateway has no record of it *yet*.
2. Subscribe to all of them over ``/ws``. The gateway answers a subscription
   with each task's latest event from the stream, then every later one, so
   nothing between the GET and the subscription is lost, and nothing shown is
   older than the GET (it came first, from the same replica).
3. Follow events until every task has ended. An id still unheard of
   ``unknown_after`` seconds after the GETs is an error: ``unknown task <id>``.
   A task that had already ended at the GET is done; its final event, which
   the subscription repeats, is still printed (a script reading the lines sees
   how it ended) when it comes within that time.

Why wait at all after a 404 (measured on two replicas: a task submitted on one
was unknown to the other's first GET every time, for 7 ms typically and 30 ms
at most on an idle machine): the replica that accepts a task records it before
it answers 202, but *other* replicas learn of it from its ``queued``
announcement on the events stream, a few milliseconds later (longer on a busy
broker); and a task sent straight to RabbitMQ (a Celery client; a Dramatiq
producer, until the bridge announces it) is known once a worker starts it. An
id that appears within the grace period is followed as usual; waiting for it
costs nothing, since the subscription delivers its first event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import Any, Protocol

import aiohttp
import click
from rich.console import Console, RenderableType
from rich.live import Live

from cargoctl.client import GatewayClient, segment
from cargoctl.errors import CliError, error_line
from cargoctl.tables import TERMINAL_STATES
from cargoctl.watch_board import WatchBoard


class Sink(Protocol):
    """Where watched tasks are shown."""

    def known(self, doc: dict[str, Any]) -> None:
        """The task's document from ``GET /tasks/{id}``."""

    def unknown(self, task_id: str) -> None:
        """An id the gateway did not know when asked."""

    def event(self, frame: dict[str, Any]) -> None:
        """An event frame from the WebSocket."""


class LineSink:
    """One line per event, the event frame's JSON as the gateway sent it: for pipes and
    scripts (what ``watch`` printed before it had a live view)."""

    def known(self, doc: dict[str, Any]) -> None:
        pass

    def unknown(self, task_id: str) -> None:
        pass

    def event(self, frame: dict[str, Any]) -> None:
        click.echo(json.dumps(frame))


class LiveSink:
    """A live table on the terminal, redrawn as events arrive; left on screen at the end."""

    def __init__(self, console: Console, max_rows: int) -> None:
        self.board = WatchBoard(max_rows)
        self.console = console
        self.live = Live(self.render(), console=console, refresh_per_second=4,
                         transient=False)

    def __enter__(self) -> LiveSink:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self.render(), refresh=True)
        self.live.stop()

    def render(self) -> RenderableType:
        return self.board.render(self.console.width)  # read each time: terminals resize

    def known(self, doc: dict[str, Any]) -> None:
        self.board.apply(doc)
        self.live.update(self.render())

    def unknown(self, task_id: str) -> None:
        self.board.expect(task_id)
        self.live.update(self.render())

    def event(self, frame: dict[str, Any]) -> None:
        self.board.apply(frame)
        self.live.update(self.render())


def unknown_tasks_error(task_ids: Iterable[str], gateway: str) -> CliError:
    ids = sorted(task_ids)
    what = f"unknown task {ids[0]}" if len(ids) == 1 else f"unknown tasks {', '.join(ids)}"
    return CliError(f"{what}: the gateway at {gateway} has no record of "
                    f"{'it' if len(ids) == 1 else 'them'} (never submitted, or expired)",
                    "task_not_found")


async def watch_tasks(gateway: GatewayClient, task_ids: list[str], sink: Sink, *,
                      timeout: float, unknown_after: float) -> int:
    """Follow ``task_ids`` until each has ended (0); every task's events when none are
    given, until the timeout. Raises :class:`CliError` for what stops it early."""
    try:
        async with asyncio.timeout(timeout):
            return await _watch(gateway, task_ids, sink, unknown_after)
    except TimeoutError:
        raise CliError(f"timed out after {timeout:g}s"
                       + (" before every task ended" if task_ids else "")) from None


async def _watch(gateway: GatewayClient, task_ids: list[str], sink: Sink,
                 unknown_after: float) -> int:
    ids = list(dict.fromkeys(task_ids))  # once each, in the order given
    pending: set[str] = set()  # not ended yet
    unknown: set[str] = set()  # not known to the gateway yet
    owed: set[str] = set()  # ended before the GET: their final event is still shown
    for task_id in ids:
        reply = await gateway.request("GET", f"/tasks/{segment(task_id)}", expect=(200, 404))
        if reply.status == 404:
            _check_not_found(reply.doc, task_id)
            unknown.add(task_id)
            pending.add(task_id)
            sink.unknown(task_id)
        else:
            sink.known(reply.doc)
            (owed if reply.doc.get("state") in TERMINAL_STATES else pending).add(task_id)
    deadline = time.monotonic() + unknown_after

    async with await gateway.websocket() as ws:
        await ws.send_json({"op": "subscribe", "task_ids": ids} if ids
                           else {"op": "subscribe", "all": True})
        while not ids or pending or owed:
            wait = None
            if unknown or owed:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    if unknown:
                        raise unknown_tasks_error(unknown, gateway.url)
                    # A replica that has not read that far in the stream yet: what the
                    # GET said stands.
                    owed.clear()
                    continue
            try:
                async with asyncio.timeout(wait):
                    message = await ws.receive()
            except TimeoutError:
                continue  # the grace period: decided above
            frame = _frame(message)
            if frame.get("type") == "error":
                error = frame.get("error") or {}
                raise CliError(f"the gateway refused the subscription: "
                               f"{error_line(str(error.get('message')), error.get('code'))}")
            if frame.get("type") != "event":
                continue
            sink.event(frame)
            task_id = str(frame.get("task_id"))
            unknown.discard(task_id)
            owed.discard(task_id)
            if frame.get("state") in TERMINAL_STATES:
                pending.discard(task_id)
            elif task_id in ids:
                pending.add(task_id)  # running (again: a replayed dead letter)
        return 0


def _check_not_found(doc: Any, task_id: str) -> None:
    """A 404 that is not the gateway's ``task_not_found`` (a proxy's, another server's)."""
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict) or error.get("code") != "task_not_found":
        raise CliError(f"GET /tasks/{task_id} answered 404 without Cargo's task_not_found; "
                       "is the gateway URL right?")


def _frame(message: aiohttp.WSMessage) -> dict[str, Any]:
    if message.type == aiohttp.WSMsgType.TEXT:
        try:
            frame = json.loads(message.data)
        except ValueError:
            raise CliError("the gateway sent a WebSocket frame that is not JSON") from None
        return frame if isinstance(frame, dict) else {}
    if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                        aiohttp.WSMsgType.CLOSED):
        raise CliError("the gateway closed the WebSocket before every task ended"
                       + (f" ({message.extra})" if message.extra else ""))
    if message.type == aiohttp.WSMsgType.ERROR:
        raise CliError(f"the WebSocket to the gateway failed: {message.data}")
    return {}
