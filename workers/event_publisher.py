"""Publishes a process's lifecycle events with pipelined publisher confirms.

Every event still goes to a confirm channel, and none is forgotten before the
broker confirmed it, but a process only *waits* for confirms where it matters:
before it reports a task's outcome. ``started`` and ``progress`` events are
written and left in flight; the next event that must be confirmed (the task's
``succeeded``, ``failed``, ``retrying``, ``revoked`` or ``dead_lettered``)
waits until the broker confirmed everything up to and including itself. A
task's message is acknowledged only after its outcome was reported, so an
acknowledged task's events are all in the stream, as with a wait per event,
for one broker round trip per task instead of two: measured
(``bench/drain.py``), that round trip under load was most
of a trivial task's cost (274-397 → 486-504 tasks/s, bench/RESULTS.md "What was
changed for it"). The publish that does not wait is py-amqp's private one, used
only through :mod:`workers.pyamqp_adapter`.

Unconfirmed events are kept until confirmed. When the connection fails they
are published again on a new one, in order (at least once: the events'
consumers take a repeated state as a no-op), and a ``nack`` fails the wait.
One connection per process: a prefork child opens its own after the fork.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import amqp
import kombu
import structlog

from broker.topology import PERSISTENT
from workers.pyamqp_adapter import open_confirm_channel, publish_unconfirmed, socket_fileno

log = structlog.get_logger(__name__)


class ConfirmFailed(Exception):
    """The broker did not confirm an event in time, or refused it."""


@dataclass(frozen=True)
class PendingEvent:
    body: bytes
    exchange: str
    routing_key: str
    content_type: str
    # Called once the broker settled it: True confirmed, False refused (nack).
    on_settled: Callable[[bool], None] | None = field(default=None, compare=False)


class EventPublisher:
    """One confirm channel per process; waits only when asked to."""

    def __init__(self, url: str, timeout: float, attempts: int = 3) -> None:
        self._url = url
        self._timeout = timeout
        self._attempts = attempts
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._connection: Any = None
        self._channel: Any = None
        self._next_tag = 1
        self._nacked = False
        # Published, not yet confirmed, by delivery tag (ascending: publish order).
        self._unconfirmed: OrderedDict[int, PendingEvent] = OrderedDict()

    def publish(self, event: PendingEvent, *, wait: bool) -> None:
        """Publish ``event``; with ``wait``, return only once it and every earlier
        event are confirmed. Raises ``ConfirmFailed`` after ``attempts`` tries."""
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's socket is not ours
                self._forget_connection(close=False)
                self._unconfirmed.clear()
                self._pid = os.getpid()
            deadline = time.monotonic() + self._timeout * self._attempts
            problem: BaseException | None = None
            sent = False
            for _attempt in range(self._attempts):
                try:
                    if self._channel is None:
                        self._connect()  # republishes what is unconfirmed
                        problem = None
                    if not sent:  # once kept as unconfirmed, a reconnect republishes it
                        sent = True
                        self._send(self._next_tag, event)
                    if wait:
                        self._wait_confirmed(self._next_tag - 1, deadline)
                    else:
                        self._take_confirms()
                    return
                except (OSError, amqp.exceptions.AMQPError, kombu.exceptions.KombuError) as exc:
                    problem = exc
                    log.warning("events.publish_failed_reconnecting",
                                error_type=type(exc).__name__, error=str(exc))
                    self._forget_connection(close=True)
                except ConfirmFailed as exc:
                    problem = exc
                    break
            raise ConfirmFailed(str(problem))

    def poll(self) -> None:
        """Process the confirms that arrived, without blocking (an event loop's
        reader callback). A broken connection is dropped: the next publish
        reconnects and publishes what is unconfirmed again."""
        with self._lock:
            if self._channel is None:
                return
            try:
                self._take_confirms()
            except (OSError, amqp.exceptions.AMQPError, kombu.exceptions.KombuError) as exc:
                # The next publish reconnects.
                log.warning("events.confirms_unreadable",
                            error_type=type(exc).__name__, error=str(exc))
                self._forget_connection(close=True)

    def fileno(self) -> int | None:
        """The connection's socket, for an event loop to watch for confirms."""
        connection = self._connection
        return None if connection is None else socket_fileno(connection)

    def close(self) -> None:
        with self._lock:
            self._forget_connection(close=True)

    # -- inside the lock

    def _connect(self) -> None:
        connection = kombu.Connection(self._url, connect_timeout=self._timeout)
        connection.ensure_connection(max_retries=1)
        channel = open_confirm_channel(connection, self._on_ack, self._on_nack)
        self._connection, self._channel = connection, channel
        self._nacked = False
        pending = list(self._unconfirmed.values())
        self._unconfirmed.clear()
        self._next_tag = 1
        for event in pending:  # in their order, under new delivery tags
            self._send(self._next_tag, event)

    def _send(self, tag: int, event: PendingEvent) -> None:
        self._unconfirmed[tag] = event
        self._next_tag = tag + 1
        publish_unconfirmed(self._channel, event.body, exchange=event.exchange,
                            routing_key=event.routing_key, content_type=event.content_type,
                            delivery_mode=PERSISTENT)

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked = True
        self._settle(delivery_tag, multiple, confirmed=False)

    def _settle(self, delivery_tag: int, multiple: bool, confirmed: bool = True) -> None:
        settled: list[PendingEvent] = []
        if not multiple:
            event = self._unconfirmed.pop(delivery_tag, None)
            if event is not None:
                settled.append(event)
        else:
            while self._unconfirmed and next(iter(self._unconfirmed)) <= delivery_tag:
                settled.append(self._unconfirmed.popitem(last=False)[1])
        for event in settled:
            if event.on_settled is not None:
                event.on_settled(confirmed)

    def _confirmed(self, tag: int) -> bool:
        """Whether the broker confirmed ``tag`` and every tag before it."""
        return next(iter(self._unconfirmed), self._next_tag) > tag

    def _take_confirms(self) -> None:
        """Process the confirms that already arrived, without blocking."""
        while True:
            try:
                self._connection.connection.drain_events(timeout=0)
            except (TimeoutError, BlockingIOError):  # nothing more has arrived
                return

    def _wait_confirmed(self, tag: int, deadline: float) -> None:
        while not self._confirmed(tag):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConfirmFailed(f"no confirm within {self._timeout * self._attempts:g}s")
            try:
                self._connection.connection.drain_events(timeout=min(remaining, self._timeout))
            except TimeoutError:
                continue
        if self._nacked:
            self._nacked = False
            raise ConfirmFailed("the broker refused (nack) an event")

    def _forget_connection(self, *, close: bool) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and close:
            # No AMQP close handshake: on a broken or silent connection it would
            # wait for a reply that never comes. Just drop the socket.
            try:
                connection.collect()
            except Exception:
                log.debug("events.connection_drop_failed", exc_info=True)
