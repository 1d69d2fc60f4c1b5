"""Announces accepted tasks on the events stream, in batches (the gateway's and the bridge's).

Every replica must learn of a task the moment it is accepted (a client may ask
another replica for it), so whatever accepts a task (the gateway, the Dramatiq
bridge) publishes a ``queued`` event. One
message per submission doubled the broker work of a submission and, since every
replica reads the stream, grew with the number of replicas; so accepted tasks
are gathered for a few milliseconds and announced as one message per task
name. The task itself is already confirmed in its queue before it is announced;
a lost announcement only means other replicas learn of the task at ``started``.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from broker.events import MAX_BATCH, TaskEvent
from broker.publisher import Publisher

log = structlog.get_logger(__name__)

FLUSH_SECONDS = 0.005


class Announcer:
    """Gathers ``queued`` events for ``flush_seconds``, then publishes one batch per task name."""

    def __init__(self, publisher: Publisher, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._publisher = publisher
        self._flush_seconds = flush_seconds
        self._pending: dict[str, list[TaskEvent]] = {}
        self._flusher: asyncio.Task[None] | None = None

    def announce(self, event: TaskEvent) -> None:
        self._pending.setdefault(event.name, []).append(event)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self._flush_seconds)
        await self._flush()

    async def _flush(self) -> None:
        while self._pending:
            pending, self._pending = self._pending, {}
            for events in pending.values():
                for start in range(0, len(events), MAX_BATCH):
                    batch = events[start:start + MAX_BATCH]
                    try:
                        await self._publisher.publish_event_batch(batch)
                    except Exception as exc:
                        log.warning("events.announce_failed", tasks=len(batch), error=str(exc))

    async def close(self, timeout: float) -> None:
        """Announce what is still pending (bounded), then stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                if self._flusher is not None:
                    await self._flusher
                await self._flush()
