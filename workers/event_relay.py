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

All of it runs on the consumer's event loop (kombu's hub), as Celery's own
consumer does: the children's socket and the events connection are readers of
the hub, one batch is published per loop iteration (``on_tick``), and an ack
runs as soon as the confirm is read. No thread, no lock: a relay thread measured
costlier than the publishes it saved. The hub is reached only through
:mod:`workers.kombu_hub_adapter`, Celery's count of held tasks only through
:mod:`workers.celery_state_adapter`.

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
- A broker that does not confirm within ``timeout`` times 3: the tasks are
  acknowledged and the failure logged, as when a child's own publish fails (an
  event must never change a task's outcome); the connection is dropped, and
  what was unconfirmed is published again on the next one.
- Anything the relay cannot take (it is not running, the socket is full, the
  events are larger than one socket message, a task that failed, retried or
  published earlier events itself) is published by the child as before.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import structlog
from celery import bootsteps

from broker.events import BATCH_TYPE, CONTENT_TYPE, MAX_BATCH
from broker.topology import EVENTS_EXCHANGE, event_routing_key
from workers.celery_state_adapter import held_count
from workers.event_publisher import ConfirmFailed, EventPublisher, PendingEvent
from workers.kombu_hub_adapter import (
    call_every_tick,
    call_repeatedly,
    stop_calling_every_tick,
    unwatch,
    watch_readable,
)

log = structlog.get_logger(__name__)

# Largest socket message a child hands over; larger events are published by the child.
MAX_HANDOVER_BYTES = 64 * 1024
_BATCH_HEAD = b'{"type":"' + BATCH_TYPE.encode() + b'","events":['
_BATCH_TAIL = b"]}"
# The routing key of a relayed batch: every relayed task ended in ``succeeded``.
ROUTING_KEY = event_routing_key("succeeded", "batch")
ATTEMPTS = 3
_OFF, _ON, _BUSY = 0, 1, 2

Ack = Callable[[], None]


class EventRelay:
    """One per worker (built before the pool forks); see the module docstring."""

    def __init__(self, url: str, timeout: float, min_running: int) -> None:
        self._owner = os.getpid()
        # Children hand over only while at least this many tasks are taken at once.
        # Below it a batch holds one or two tasks and saves nothing, while the hop
        # through the main process made a lone task's events about 1 ms later
        # (bench.e2e at concurrency 2: latency p50 1.70x the peer with the relay,
        # 1.38x without; bench.drain at 8 processes: 760 tasks/s with it, 580 without).
        self._min_running = min_running
        self._parent_end, self._child_end = socket.socketpair(socket.AF_UNIX,
                                                              socket.SOCK_SEQPACKET)
        self._parent_end.setblocking(False)
        # Shared with the children (anonymous shared memory survives the fork):
        # they hand events over only while the main process relays them and is busy.
        self._active = multiprocessing.RawValue("b", _OFF)
        self._timeout = timeout
        self._publisher = EventPublisher(url, timeout)
        # Handed over, not yet published: (task id, how many events, their JSON joined).
        self._queue: list[tuple[str, int, bytes]] = []
        # Task id -> its deferred ack (None: not asked for yet), from hand-over to confirm.
        self._pending: dict[str, Ack | None] = {}
        # Published batches not yet settled, oldest first: serial -> (sent at, task ids).
        self._outstanding: OrderedDict[int, tuple[float, list[str]]] = OrderedDict()
        self._serial = 0
        self._hub: Any = None
        self._watched_fd: int | None = None
        self._timer: Any = None

    # -- in a prefork child

    def hand_over(self, task_id: str, events: list[bytes]) -> bool:
        """Give a finished task's events (JSON docs, in order) to the main process.
        False: not taken, publish them yourself."""
        if os.getpid() == self._owner or self._active.value != _BUSY:
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
        watch_readable(hub, self._parent_end.fileno(), self._read_children)
        call_every_tick(hub, self._publish_queued)
        self._timer = call_repeatedly(hub, self._timeout, self._give_up_on_stale)
        self._active.value = _ON

    def stop(self) -> None:
        """Children publish for themselves from now on; what was handed over is
        published, and its acks run, before this returns (bounded by the timeout)."""
        self._active.value = _OFF
        hub, self._hub = self._hub, None
        if hub is not None:
            unwatch(hub, self._parent_end.fileno())
            stop_calling_every_tick(hub, self._publish_queued)
            if self._watched_fd is not None:
                unwatch(hub, self._watched_fd)
                self._watched_fd = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._read_children()
        self._publish_queued(wait=True)
        deadline = time.monotonic() + self._timeout * ATTEMPTS
        while self._outstanding and time.monotonic() < deadline:  # earlier batches' confirms
            self._publisher.poll()
            time.sleep(0.01)

    def defer_ack(self, task_id: str | None, ack: Ack) -> bool:
        """Whether the ack of ``task_id`` waits for its relayed events' confirm
        (then ``ack`` runs on the hub once they are confirmed)."""
        if task_id is None:
            return False
        self._read_children()  # the child handed its events over before its result
        if task_id not in self._pending:
            return False  # not relayed, or relayed and already confirmed
        if self._hub is None:  # stopping: publish it here, then ack at once
            self._publish_queued(wait=True)
            self._pending.pop(task_id, None)
            return False
        self._pending[task_id] = ack
        return True

    def _read_children(self) -> None:
        while True:
            try:
                message = self._parent_end.recv(MAX_HANDOVER_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            if not message:
                return
            head, count, body = message.split(b"\n", 2)
            task_id = head.decode()
            self._pending.setdefault(task_id, None)
            self._queue.append((task_id, int(count), body))

    def _publish_queued(self, wait: bool = False) -> None:
        """Publish what was handed over as few messages as MAX_BATCH allows (once
        per loop iteration: the hub's ``on_tick``)."""
        if self._hub is not None:
            self._active.value = _BUSY if held_count() >= self._min_running else _ON
        if not self._queue:
            return
        batch, self._queue = self._queue, []
        messages: list[tuple[list[str], list[bytes]]] = [([], [])]
        counted = 0
        for task_id, count, events in batch:
            if counted + count > MAX_BATCH:
                messages.append(([], []))
                counted = 0
            messages[-1][0].append(task_id)
            messages[-1][1].append(events)
            counted += count
        for i, (task_ids, parts) in enumerate(messages):
            self._serial += 1
            self._outstanding[self._serial] = (time.monotonic(), task_ids)
            body = _BATCH_HEAD + b",".join(parts) + _BATCH_TAIL
            event = PendingEvent(body, EVENTS_EXCHANGE, ROUTING_KEY, CONTENT_TYPE,
                                 on_settled=functools.partial(self._settled, self._serial))
            try:
                self._publisher.publish(event, wait=wait and i == len(messages) - 1)
            except ConfirmFailed as exc:  # kept unconfirmed: published again on reconnect
                log.warning("events.relay_publish_failed", tasks=len(task_ids), error=str(exc))
        self._watch_confirms()

    def _watch_confirms(self) -> None:
        """Read confirms when the events connection's socket is readable (its socket
        changes when it reconnects)."""
        if self._hub is None:
            return
        fd = self._publisher.fileno()
        if fd == self._watched_fd:
            return
        if self._watched_fd is not None:
            unwatch(self._hub, self._watched_fd)
        self._watched_fd = fd
        if fd is not None:
            watch_readable(self._hub, fd, self._read_confirms)

    def _read_confirms(self) -> None:
        self._publisher.poll()
        self._watch_confirms()

    def _settled(self, serial: int, confirmed: bool) -> None:
        entry = self._outstanding.pop(serial, None)
        if entry is None:
            return  # given up on already
        if not confirmed:
            log.warning("events.relay_refused", tasks=len(entry[1]))
        self._release(entry[1])

    def _release(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            ack = self._pending.pop(task_id, None)
            if ack is not None:
                ack()

    def _give_up_on_stale(self) -> None:
        limit = time.monotonic() - self._timeout * ATTEMPTS
        while self._outstanding:
            serial, (sent_at, task_ids) = next(iter(self._outstanding.items()))
            if sent_at > limit:
                return
            del self._outstanding[serial]
            # As when a child's own publish fails: logged, and the tasks acknowledged.
            log.warning("events.relay_unconfirmed_acknowledged", tasks=len(task_ids),
                        waited_seconds=self._timeout * ATTEMPTS)
            self._release(task_ids)
            self._publisher.close()  # the next publish reconnects and publishes it again


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
