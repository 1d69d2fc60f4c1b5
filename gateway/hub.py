"""Fan-out of task events to WebSocket subscribers.

Everything here runs on the event loop without awaiting, so "send what is known,
then register for what comes next" is atomic: a subscriber never misses an event
between the two and never gets one twice.

A frame is queued as the complete WebSocket frame (``gateway.ws_frames``): an
event's frame is built once, however many subscribers get it, and they all
share one bytes object (with the one write per wake-up: 14.4 → 7.0 us of gateway
CPU a frame, bench/RESULTS.md fan-out).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable

from broker.events import TaskEvent
from gateway.store import EventRing, TaskStore
from gateway.ws_frames import json_frame


def event_frame(event: TaskEvent) -> bytes:
    """The ``event`` frame of one stream event, as sent."""
    return json_frame(event.to_client())


class Subscriber:
    """One WebSocket connection's subscriptions and its bounded outbound queue.

    The queue is a plain deque the connection's sender drains in one go when it
    wakes (:meth:`wait`): one wake-up for however many frames arrived meanwhile,
    not one loop hop per frame as with an ``asyncio.Queue`` (the one write per
    wake-up of bench.fanout's 14.4 → 7.0 us a frame, bench/RESULTS.md).
    """

    def __init__(self, queue_size: int) -> None:
        self.frames: deque[bytes] = deque()
        self._limit = queue_size
        self._waiter: asyncio.Future[None] | None = None
        self.task_ids: set[str] = set()
        self.all = False
        self.names: frozenset[str] | None = None
        # Set when the client fell so far behind that its queue filled up: the
        # connection is closed so the client reconnects with ``since`` rather
        # than silently missing events.
        self.overflowed = False
        # While a ``since`` replay is read from the stream, live events wait here.
        self.pending: list[TaskEvent] | None = None

    def offer(self, frame: bytes) -> None:
        if self.overflowed:
            return
        if len(self.frames) >= self._limit:
            self.overflowed = True
        else:
            self.frames.append(frame)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until a frame is queued or the subscriber overflowed."""
        while not self.frames and not self.overflowed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def wants(self, event: TaskEvent) -> bool:
        if event.task_id in self.task_ids:
            return True
        return self.all and (self.names is None or event.name in self.names)


class Hub:
    def __init__(self, store: TaskStore, ring: EventRing) -> None:
        self.store = store
        self.ring = ring
        self._subscribers: set[Subscriber] = set()
        self._by_task: dict[str, set[Subscriber]] = {}
        self._all: set[Subscriber] = set()
        # Cursor of the last event the reader processed.
        self.high_water: int | None = None
        # Called with every stream event after subscribers got it (the revoker).
        self.listeners: list[Callable[[TaskEvent], None]] = []
        # Called with every stream event first, even one the store finds stale
        # (a late ``queued`` announcement still teaches its idempotency key).
        self.observers: list[Callable[[TaskEvent], None]] = []

    @property
    def connections(self) -> int:
        return len(self._subscribers)

    @property
    def subscriptions(self) -> int:
        return sum(len(s) for s in self._by_task.values()) + len(self._all)

    def connect(self, queue_size: int) -> Subscriber:
        subscriber = Subscriber(queue_size)
        self._subscribers.add(subscriber)
        return subscriber

    def disconnect(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        self._all.discard(subscriber)
        for task_id in subscriber.task_ids:
            bucket = self._by_task.get(task_id)
            if bucket is not None:
                bucket.discard(subscriber)
                if not bucket:
                    del self._by_task[task_id]
        subscriber.task_ids.clear()

    def receive(self, event: TaskEvent) -> None:
        """One event read from the stream, in stream order: into the store, and
        unless the store found it stale, into the ring and to the subscribers."""
        assert event.cursor is not None
        self.high_water = event.cursor
        for observer in self.observers:
            observer(event)
        if not self.store.apply(event):
            return
        self.ring.append(event)
        self.dispatch(event)
        for listener in self.listeners:
            listener(event)

    def dispatch(self, event: TaskEvent) -> None:
        """Deliver one stream event to every subscriber that wants it."""
        targets = set(self._by_task.get(event.task_id, ()))
        if self._all:
            targets.update(s for s in self._all if s.wants(event))
        if not targets:
            return
        # Once, shared by every subscriber: bench.fanout 14.4 → 7.0 us a frame (RESULTS.md).
        frame = event_frame(event)
        for subscriber in targets:
            if subscriber.pending is not None:
                subscriber.pending.append(event)
            else:
                subscriber.offer(frame)

    def subscribe_tasks(self, subscriber: Subscriber, task_ids: Iterable[str]) -> list[str]:
        """Send each task's latest known event, then register for later ones."""
        added = []
        for task_id in task_ids:
            if task_id in subscriber.task_ids:
                continue
            record = self.store.get(task_id)
            if record is not None and record.last_event is not None:
                subscriber.offer(event_frame(record.last_event))
            subscriber.task_ids.add(task_id)
            self._by_task.setdefault(task_id, set()).add(subscriber)
            added.append(task_id)
        return added

    def unsubscribe_tasks(self, subscriber: Subscriber, task_ids: Iterable[str]) -> None:
        for task_id in task_ids:
            subscriber.task_ids.discard(task_id)
            bucket = self._by_task.get(task_id)
            if bucket is not None:
                bucket.discard(subscriber)
                if not bucket:
                    del self._by_task[task_id]

    def subscribe_all(self, subscriber: Subscriber, names: frozenset[str] | None,
                      since: int | None) -> int | None:
        """Register for every event; replay from memory after ``since``.

        Returns None when done, or the cursor up to which the caller must
        replay from the stream (the ring no longer holds everything after
        ``since``); live events are held back until :meth:`finish_backfill`.
        """
        subscriber.all = True
        subscriber.names = names
        self._all.add(subscriber)
        if since is None or self.high_water is None or since >= self.high_water:
            return None
        if self.ring.covers(since):
            for event in self.ring.after(since):
                if subscriber.wants(event):
                    subscriber.offer(event_frame(event))
            return None
        subscriber.pending = []
        return self.high_water

    def finish_backfill(self, subscriber: Subscriber) -> None:
        pending, subscriber.pending = subscriber.pending or [], None
        for event in pending:
            subscriber.offer(event_frame(event))

    def unsubscribe_all(self, subscriber: Subscriber) -> None:
        subscriber.all = False
        subscriber.names = None
        self._all.discard(subscriber)
