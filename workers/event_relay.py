"""The worker's main process publishes its children's short tasks' events, many per message.

Measured (``bench/drain.py``), a trivial task's own stream message and the wait
for its confirm cost a prefork child more than running the task, and RabbitMQ
more than the task's quorum-queue delivery; with more children the machine
saturated on them. So a task whose whole life fit in the child's merge window
(``workers.event_window``: ``started`` ... ``succeeded`` still held together)
is not published by the child. The child hands its events to the main process
over a local socket, before it returns the task's result, and the main process
publishes the events of every child's tasks that ended meanwhile as one stream
message with one confirm (group commit).

The guarantee is unchanged: a task's message is acknowledged only after its
outcome is confirmed. The main process defers the acknowledgement
(:meth:`EventRelay.defer_ack`, from ``CargoRequest.acknowledge``) until the
batch holding the task's events is confirmed. (The deferred message still counts
against the prefetch: Celery's prefetch is static on quorum queues, so it cannot
be raised meanwhile as Celery does for ETA tasks; the child waited for the same
confirm itself before.)

- A worker killed before the confirm: the message was not acknowledged, so the
  broker redelivers it; its ``succeeded`` is in the stream or not, and the
  duplicate guard (``workers.duplicates``) reads the stream either way.
- A child killed after handing its events over: they are still published (the
  hub reads the socket whenever it is readable); the task is redelivered and
  recognised as done, as above.
- Anything the relay cannot take (it is not running, the socket is full, the
  events are larger than one socket message, a task that failed, retried or
  published earlier events itself) is published by the child as before.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from celery import bootsteps

from broker.events import BATCH_TYPE, CONTENT_TYPE, MAX_BATCH
from broker.topology import EVENTS_EXCHANGE, event_routing_key
from workers.event_publisher import ConfirmFailed, EventPublisher, PendingEvent

log = logging.getLogger(__name__)

# Largest socket message a child hands over; larger events are published by the child.
MAX_HANDOVER_BYTES = 64 * 1024
_BATCH_HEAD = b'{"type":"' + BATCH_TYPE.encode() + b'","events":['
_BATCH_TAIL = b"]}"
# The routing key of a relayed batch: every relayed task ended in ``succeeded``.
ROUTING_KEY = event_routing_key("succeeded", "batch")
_CONFIRMED = object()

Ack = Callable[[], None]


class EventRelay:
    """One per worker (built before the pool forks); see the module docstring."""

    def __init__(self, url: str, timeout: float) -> None:
        self._owner = os.getpid()
        self._parent_end, self._child_end = socket.socketpair(socket.AF_UNIX,
                                                              socket.SOCK_SEQPACKET)
        self._parent_end.setblocking(False)
        # Shared with the children (anonymous shared memory survives the fork):
        # they hand events over only while the main process relays them.
        self._active = multiprocessing.RawValue("b", 0)
        self._publisher = EventPublisher(url, timeout)
        self._lock = threading.Condition()
        # (task id, how many events, their JSON docs joined by commas), in hand-over order
        self._queue: list[tuple[str, int, bytes]] = []
        self._pending: dict[str, Ack | object | None] = {}  # task id -> its deferred ack
        self._done: list[Ack] = []  # confirmed: acks for the hub to run
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._thread: threading.Thread | None = None
        self._hub: Any = None

    # -- in a prefork child

    def hand_over(self, task_id: str, events: list[bytes]) -> bool:
        """Give a finished task's events (JSON docs, in order) to the main process.
        False: not taken, publish them yourself."""
        if os.getpid() == self._owner or not self._active.value:
            return False
        message = f"{task_id}\n{len(events)}\n".encode() + b",".join(events)
        if len(message) > MAX_HANDOVER_BYTES:
            return False
        try:
            self._child_end.send(message, socket.MSG_DONTWAIT)
        except OSError:  # full (the main process is behind) or gone
            return False
        return True

    # -- in the main process, on the consumer's hub

    def start(self, hub: Any) -> None:
        self._hub = hub
        hub.add_reader(self._parent_end.fileno(), self._read_children)
        hub.add_reader(self._wake_r, self._run_acks)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="cargo-event-relay")
            self._thread.start()
        self._active.value = 1

    def stop(self) -> None:
        """Children publish for themselves from now on; what was handed over is
        published and its acks run before this returns."""
        self._active.value = 0
        if self._hub is not None:
            self._hub.remove_reader(self._parent_end.fileno())
            self._hub.remove_reader(self._wake_r)
            self._hub = None
        self._read_children()
        self._publish_now()
        self._run_acks()

    def defer_ack(self, task_id: str | None, ack: Ack) -> bool:
        """Whether the ack of ``task_id`` waits for its relayed events' confirm
        (then ``ack`` runs on the hub once they are confirmed)."""
        if task_id is None:
            return False
        self._read_children()  # the child handed its events over before its result
        with self._lock:
            state = self._pending.get(task_id, None)
            if task_id not in self._pending:
                return False
            if state is _CONFIRMED:
                del self._pending[task_id]
                return False
            if self._thread is None or not self._active.value:
                deferred = False
            else:
                self._pending[task_id] = ack
                deferred = True
        if not deferred:  # stopping: publish it here, then ack at once
            self._publish_now()
            return False
        return True

    def _read_children(self) -> None:
        received: list[tuple[str, int, bytes]] = []
        while True:
            try:
                message = self._parent_end.recv(MAX_HANDOVER_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            if not message:
                break
            head, count, body = message.split(b"\n", 2)
            received.append((head.decode(), int(count), body))
        if received:
            with self._lock:
                for task_id, _, _ in received:
                    self._pending.setdefault(task_id, None)
                self._queue.extend(received)
                self._lock.notify()

    def _run_acks(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)
        with self._lock:
            done, self._done = self._done, []
        for ack in done:
            ack()

    # -- the relay thread

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._lock.wait()
            self._publish_now()

    def _publish_now(self) -> None:
        """Publish what is queued (one message per MAX_BATCH events), wait for the
        confirm, then hand the acks to the hub. Serialised by the publisher's lock."""
        with self._lock:
            batch, self._queue = self._queue, []
        if not batch:
            return
        messages: list[list[bytes]] = [[]]
        counted = 0
        for _, count, events in batch:
            if counted + count > MAX_BATCH:
                messages.append([])
                counted = 0
            messages[-1].append(events)
            counted += count
        try:
            for i, parts in enumerate(messages):
                body = _BATCH_HEAD + b",".join(parts) + _BATCH_TAIL
                self._publisher.publish(PendingEvent(body, EVENTS_EXCHANGE, ROUTING_KEY,
                                                     CONTENT_TYPE),
                                        wait=i == len(messages) - 1)
        except ConfirmFailed as exc:
            # As when a child's own publish fails: logged, and the tasks are still
            # acknowledged (an event must never change a task's outcome).
            log.warning("could not publish the events of %d finished tasks: %s", len(batch), exc)
        with self._lock:
            for task_id, _, _ in batch:
                ack = self._pending.get(task_id)
                if callable(ack):
                    del self._pending[task_id]
                    self._done.append(ack)
                else:  # its ack was not asked for yet: the ack may run at once
                    self._pending[task_id] = _CONFIRMED
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")


def relay_step(relay: EventRelay) -> type[bootsteps.StartStopStep]:
    class EventRelayStep(bootsteps.StartStopStep):
        """Relays the children's events while the consumer runs (on its hub)."""

        requires = ("celery.worker.consumer.tasks:Tasks",)

        def start(self, parent: Any) -> None:
            if parent.hub is not None:  # the prefork pool's event loop; else: no relay
                relay.start(parent.hub)

        def stop(self, parent: Any) -> None:
            relay.stop()

        shutdown = stop

    return EventRelayStep
