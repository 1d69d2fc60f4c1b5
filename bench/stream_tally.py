"""Counting what the workers reported on the events stream, task by task.

The ground truth of a chaos run: ``cargo.events.stream`` read from its first
offset, over whichever of the given broker addresses answers (a reader whose node
goes away reconnects to the next and reads again from the start, so nothing is
missed and nothing is counted twice: events are keyed by their stream offset).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Iterable

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from broker.events import EventDecodeError, TaskEvent, decode_stream_message
from broker.topology import EVENTS_STREAM

TERMINAL = frozenset({"succeeded", "dead_lettered", "revoked"})


class StreamTally:
    """``async with StreamTally(urls) as tally:`` — every event, by task, deduplicated by offset."""

    def __init__(self, urls: Iterable[str], prefetch: int = 500) -> None:
        self._urls = tuple(urls)
        self._prefetch = prefetch
        self._seen: set[tuple[int, int]] = set()  # (stream offset, index in its batch)
        self.events: dict[str, list[TaskEvent]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()
        self.reconnects = 0

    async def __aenter__(self) -> StreamTally:
        self._task = asyncio.create_task(self._run(), name="stream-tally")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        index = 0
        while True:
            url = self._urls[index % len(self._urls)]
            try:
                connection = await aio_pika.connect(url, timeout=5)
                async with connection:
                    channel = await connection.channel()
                    await channel.set_qos(prefetch_count=self._prefetch)
                    queue = await channel.declare_queue(EVENTS_STREAM, passive=True)
                    await queue.consume(self._on_message,
                                        arguments={"x-stream-offset": "first"})
                    # Polled: awaiting connection.closed() did not return when the
                    # node shut down (the reader then missed everything after).
                    while not (connection.is_closed or channel.is_closed):  # noqa: ASYNC110
                        await asyncio.sleep(0.5)
            except asyncio.CancelledError:
                raise
            except Exception:
                pass
            self.reconnects += 1
            index += 1
            await asyncio.sleep(0.5)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        offset = (message.headers or {}).get("x-stream-offset")
        offset = offset if isinstance(offset, int) else -1
        try:
            batch = decode_stream_message(message.body, max(offset, 0))
        except EventDecodeError:
            batch = []  # e.g. a gateway's catch-up marker
        for position, event in enumerate(batch):
            if offset >= 0 and (offset, position) in self._seen:
                continue
            self._seen.add((offset, position))
            self.events[event.task_id].append(event)
        self._arrived.set()
        await message.ack()

    def states(self, task_id: str) -> list[str]:
        return [event.state.value for event in self.events.get(task_id, [])]

    def finished(self, task_ids: Iterable[str]) -> set[str]:
        """Those of ``task_ids`` with at least one terminal event."""
        return {t for t in task_ids if any(s in TERMINAL for s in self.states(t))}

    async def wait_finished(self, task_ids: set[str], timeout: float) -> set[str]:
        """Wait (bounded) until every task has a terminal event; return those still missing."""
        deadline = time.monotonic() + timeout
        while (missing := task_ids - self.finished(task_ids)) and time.monotonic() < deadline:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), 1.0)
        return missing

    def count(self, task_id: str, state: str) -> int:
        return sum(1 for s in self.states(task_id) if s == state)
