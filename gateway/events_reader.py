"""Reads the events stream into the store, the ring and the hub.

Each gateway replica consumes the whole stream (streams are non-destructive),
so every replica knows every task. On the first connect it starts
``events_replay_seconds`` back, so a restarted gateway still knows tasks that
finished before it started; after a reconnect it resumes right after the last
offset it processed.

Stream messages are acknowledged in batches (:class:`BatchedAcks`): on a stream
an ack only gives the consumer credit for more deliveries, so one
``ack(multiple=True)`` per quarter of the prefetch window keeps the window
flowing at a fraction of the cost (each ack is a frame the connection's writer
queue carries in front of the task publishes, and was awaited per message;
part of bench.fanout's 14.4 → 7.0 us a frame, bench/RESULTS.md).
The position to resume from is ``last_offset``, kept per message as before.

"Caught up" is decided with a marker: once consuming, the reader publishes a
small marker message to the events exchange and is caught up when it reads that
marker back — everything before it in the stream has then been replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from broker.events import (
    EventDecodeError,
    TaskEvent,
    cursor_offset,
    decode_stream_message,
    utc_now,
)
from broker.topology import EVENTS_EXCHANGE, EVENTS_STREAM
from gateway.hub import Hub
from gateway.metrics import GatewayMetrics
from gateway.side_channels import side_channel
from gateway.store import StaleEventFilter

log = structlog.get_logger(__name__)

MARKER_TYPE = "cargo.gateway.marker.v1"
MARKER_ROUTING_KEY = "gateway.marker"
OFFSET_HEADER = "x-stream-offset"
PREFETCH = 500
# One ack (multiple=True) per this many stream messages, so the prefetch window
# never runs dry; the last ones of a quiet spell are acknowledged after ACK_DELAY.
ACK_EVERY = PREFETCH // 4
ACK_DELAY = 0.05
# A replay from the stream also reads this many messages before ``since``, only to
# recognise late ``queued`` announcements of tasks whose first events came
# just before it (``StaleEventFilter``); they trail those events by moments.
STALE_LOOKBACK_MESSAGES = 5_000


def _offset(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(OFFSET_HEADER)
    if not isinstance(value, int):
        raise EventDecodeError("stream message without an integer x-stream-offset")
    return value


class BatchedAcks:
    """Acknowledges the messages of one consumer ``every`` at a time (the latest
    one, ``multiple=True``), and what is left ``delay`` seconds after the first
    unacknowledged one. Without awaiting: the caller goes on with its work."""

    def __init__(self, every: int = ACK_EVERY, delay: float = ACK_DELAY) -> None:
        self._every = every
        self._delay = delay
        self._latest: AbstractIncomingMessage | None = None
        self._count = 0
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def add(self, message: AbstractIncomingMessage) -> None:
        self._latest = message
        self._count += 1
        if self._count >= self._every:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        message, self._latest, self._count = self._latest, None, 0
        if message is None:
            return
        task = asyncio.ensure_future(self._ack(message))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def drop(self) -> None:
        """The channel is gone (a reconnect): its delivery tags mean nothing now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._latest, self._count = None, 0

    @staticmethod
    async def _ack(message: AbstractIncomingMessage) -> None:
        # A closed channel takes its unacknowledged deliveries with it: nothing to do.
        with contextlib.suppress(Exception):
            await message.ack(multiple=True)


class EventsReader:
    def __init__(self, hub: Hub, replay_seconds: int, metrics: GatewayMetrics) -> None:
        self._hub = hub
        self._acks = BatchedAcks()
        self._replay_seconds = replay_seconds
        self._metrics = metrics
        self._marker = uuid.uuid4().hex
        self.caught_up = asyncio.Event()
        self.last_offset: int | None = None
        # time.monotonic() of the latest delivery: the broker is alive (its
        # connection's liveness check, gateway.app).
        self.last_heard = 0.0

    def _start_offset(self) -> Any:
        if self.last_offset is not None:
            return self.last_offset + 1
        if self._replay_seconds == 0:
            return "next"
        return datetime.now(UTC) - timedelta(seconds=self._replay_seconds)

    def forget_position(self) -> None:
        """The vhost was lost: once it is back its stream is a new one, numbered from
        0 again, so read it afresh (not after the old offset, which would skip every
        new event) and count as caught up only when the marker comes back."""
        self.last_offset = None
        self.caught_up.clear()

    async def on_connect(self, connection: AbstractConnection) -> None:
        """Broker-connection hook: (re)start consuming where this replica left off."""
        self._acks.drop()
        channel = await connection.channel()
        # Stream consumers need a prefetch limit and manual acks.
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.get_queue(EVENTS_STREAM, ensure=False)
        start = self._start_offset()
        await queue.consume(self._on_message, arguments={OFFSET_HEADER: start})
        log.info("events.consuming", start=str(start))
        if not self.caught_up.is_set():
            marker = json.dumps({"type": MARKER_TYPE, "id": self._marker}).encode()
            exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=False)
            await exchange.publish(aio_pika.Message(marker, content_type="application/json"),
                                   routing_key=MARKER_ROUTING_KEY)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.last_heard = time.monotonic()
        try:
            offset = _offset(message)
            if self.last_offset is not None and offset <= self.last_offset:
                return  # already processed before a reconnect
            self.last_offset = offset
            self._handle(message.body, offset)
        except EventDecodeError as exc:
            log.debug("events.skipped", error=str(exc))
        finally:
            self._acks.add(message)

    def _handle(self, body: bytes, offset: int) -> None:
        try:
            events = decode_stream_message(body, offset)
        except EventDecodeError:
            if _is_marker(body, self._marker):
                if not self.caught_up.is_set():
                    log.info("events.caught_up", offset=offset)
                self.caught_up.set()
                return
            raise
        hub = self._hub
        now = utc_now()  # one read time for the whole message
        for event in events:
            hub.receive(event)
            self._metrics.observe_event(event, now)


def _is_marker(body: bytes, marker: str) -> bool:
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("type") == MARKER_TYPE and doc.get("id") == marker


async def read_stream(connection: AbstractConnection, since: int, until: int,
                      timeout: float = 30.0,
                      lookback: int = STALE_LOOKBACK_MESSAGES) -> AsyncIterator[TaskEvent]:
    """Task events with ``since < cursor <= until``, read from the stream itself,
    without the late ``queued`` announcements the live path does not deliver
    either (judged from ``lookback`` messages before ``since`` on).

    Used when a client's ``since`` cursor is older than the in-memory ring.
    """
    last_offset = cursor_offset(until)
    stale = StaleEventFilter()
    # A channel of its own, ended by closing it (gateway.side_channels): never a
    # basic.cancel that nacks buffered stream deliveries.
    async with side_channel(connection) as channel:
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.get_queue(EVENTS_STREAM, ensure=False)
        deadline = time.monotonic() + timeout
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        # RabbitMQ starts at the first offset it still holds when asked for an earlier one.
        start = max(0, cursor_offset(since) - lookback)
        await queue.consume(inbox.put, arguments={OFFSET_HEADER: start})
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"stream replay did not reach cursor {until}")
            message = await asyncio.wait_for(inbox.get(), remaining)
            await message.ack()  # on a stream, only credit for the next deliveries
            offset = _offset(message)
            try:
                events = decode_stream_message(message.body, offset)
            except EventDecodeError:
                events = []
            for event in events:
                assert event.cursor is not None
                if stale.admits(event) and since < event.cursor <= until:
                    yield event
            if offset >= last_offset:
                return
