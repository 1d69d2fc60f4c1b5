"""Reading the real events stream in tests: what the workers published, in stream order."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Collection
from types import TracebackType
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from broker.events import (
    CONTENT_TYPE,
    EventDecodeError,
    TaskEvent,
    TaskState,
    decode_stream_message,
    utc_now,
)
from broker.settings import Settings
from broker.topology import EVENTS_EXCHANGE, EVENTS_STREAM, event_routing_key

TERMINAL = frozenset({"succeeded", "dead_lettered", "revoked"})


async def publish_event(settings: Settings, event: TaskEvent) -> None:
    """Put ``event`` on the events stream the way the gateways and workers do."""
    connection = await aio_pika.connect(settings.rabbitmq_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=True)
        await exchange.publish(aio_pika.Message(event.to_json(), content_type=CONTENT_TYPE),
                               routing_key=event_routing_key(event.state, event.name))


async def publish_marker(settings: Settings) -> str:
    """Put a marker on the events stream (a ``queued`` event of a task nobody
    runs); its task id. The stream is read in order, so a reader that got the
    marker got everything the stream held before it: waiting for the marker
    proves that an event which did not come is not merely late."""
    marker = f"marker-{uuid.uuid4()}"
    await publish_event(settings, TaskEvent(marker, "marker", TaskState.QUEUED, utc_now()))
    return marker


class StreamEvents:
    """``async with StreamEvents(settings) as events:`` consumes ``cargo.events.stream``.

    The stream is opened passively: it must already exist (declared by a worker
    or a gateway), so a test that relies on someone else declaring it fails if
    nobody did. ``offset`` is any ``x-stream-offset`` ("first", "next", an int).
    """

    def __init__(self, settings: Settings, offset: Any = "first", prefetch: int = 200) -> None:
        self._settings = settings
        self._offset = offset
        self._prefetch = prefetch
        self._connection: AbstractConnection | None = None
        self._arrived = asyncio.Event()
        self.events: list[TaskEvent] = []
        # Each stream message's routing key, by its offset (who published it).
        self.routing_keys: dict[int, str] = {}

    async def __aenter__(self) -> StreamEvents:
        self._connection = await aio_pika.connect(self._settings.rabbitmq_url, timeout=10)
        channel = await self._connection.channel()
        # A stream consumer must set a prefetch and ack (acks only grant credit).
        await channel.set_qos(prefetch_count=self._prefetch)
        queue = await channel.declare_queue(EVENTS_STREAM, passive=True)
        await queue.consume(self._on_message, arguments={"x-stream-offset": self._offset})
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        offset = (message.headers or {}).get("x-stream-offset")
        if isinstance(offset, int):
            self.routing_keys[offset] = message.routing_key or ""
        try:
            self.events.extend(decode_stream_message(
                message.body, offset if isinstance(offset, int) else 0))
            self._arrived.set()
        except EventDecodeError:
            pass  # e.g. a gateway's catch-up marker
        finally:
            await message.ack()

    def of(self, task_id: str) -> list[TaskEvent]:
        return [e for e in self.events if e.task_id == task_id]

    async def wait(self, done: Callable[[list[TaskEvent]], bool], timeout: float = 60,
                   what: str = "condition") -> list[TaskEvent]:
        """Wait (bounded) until ``done(self.events)`` holds; return the events so far."""
        deadline = time.monotonic() + timeout
        while not done(self.events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{what} not met within {timeout}s; events: "
                                   f"{[(e.task_id, e.state.value) for e in self.events]}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 1.0))
        return self.events

    async def until_state(self, task_id: str, states: Collection[str] = TERMINAL,
                          timeout: float = 60) -> list[TaskEvent]:
        """The task's events up to and including the first one in ``states``."""

        def reached(_: list[TaskEvent]) -> bool:
            return any(e.state.value in states for e in self.of(task_id))

        await self.wait(reached, timeout, what=f"task {task_id} reaching {sorted(states)}")
        events = self.of(task_id)
        end = next(i for i, e in enumerate(events) if e.state.value in states)
        return events[: end + 1]
