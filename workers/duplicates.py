"""A worker does not run a task id whose terminal state it already knows.

Duplicates reach a worker two ways: the same task id published again (a client
retry after an unknown outcome, a replayed dead letter that had in fact run, a
producer's own retry), and a message redelivered after its task ended but before
its ack (the worker died between the outcome event and the ack).

The hook is one place: :meth:`GuardedRequest.revoked`, which the worker's main
process asks right before it hands a message to the pool. A known id is acknowledged
there without running and without any event (the task's terminal event is
already on the stream). Only ``succeeded`` counts as "ended" here: a task id
that was dead-lettered or revoked may be replayed on purpose
(``POST /dead-letters/{id}/replay`` keeps the id). How the worker knows, cheaply:

- :class:`FinishedTasks`, a bounded LRU in the main process, filled from its own
  successes (acknowledged in the main process), and the
  requests this worker holds right now: a set lookup and a scan of at most
  prefetched requests, no broker round trip, on every message.
- Only for a message the broker marks as redelivered (``redelivered`` or a
  quorum queue's ``x-delivery-count``) and unknown to the LRU: a bounded read of
  the events stream (:mod:`workers.stream_lookup`) for that id's terminal event,
  because the process that knew may be the one that died.

Celery's own bookkeeping is read only through :mod:`workers.celery_state_adapter`.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any

import structlog

from workers.base import CargoBaseTask
from workers.celery_state_adapter import forget_request, held_elsewhere, succeeded_here
from workers.request import CargoRequest
from workers.stream_lookup import succeeded_on_stream

log = structlog.get_logger(__name__)

REMEMBERED = 100_000  # task ids; about 10 MB of main-process memory when full


class FinishedTasks:
    """Task ids this worker saw end, newest kept."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, task_id: str) -> None:
        self._ids[task_id] = None
        self._ids.move_to_end(task_id)
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)


def redelivered(delivery_info: Any, headers: dict[str, Any] | None) -> bool:
    if delivery_info and delivery_info.get("redelivered"):
        return True
    count = (headers or {}).get("x-delivery-count")
    return isinstance(count, int) and count > 0


class GuardedRequest(CargoRequest):
    """Cargo's Request, skipping a task id that already ended."""

    def revoked(self) -> bool:
        # Celery asks this right before handing the message to the pool (its
        # per-task Request subclass replaces execute_using_pool, so this is the
        # hook), and drops the request quietly when it is true. Celery's own
        # revoked() would also emit ``revoked``: a duplicate emits nothing.
        if not getattr(self, "_already_revoked", False) and self.cargo_already_ended():
            log.warning("tasks.duplicate_not_run", task_name=self.name, task_id=self.id)
            self._already_revoked = True
            forget_request(self)
            self.acknowledge()
            return True
        return bool(super().revoked())

    def cargo_already_ended(self) -> bool:
        finished = finished_of(self.task)
        if finished is None:
            return False
        if self.id in finished:
            return True
        # The same id taken and not yet finished here: its outcome has not reached this
        # process yet (the child publishes the terminal event first). Skipping
        # is safe: that message is unacknowledged until it ends, and is
        # redelivered if it does not.
        if held_elsewhere(self):
            return True
        lookup = getattr(self.task, "cargo_stream_lookup", None)
        if lookup is None or not redelivered(self.delivery_info, self.message.headers):
            return False
        if lookup(self.id):
            finished.add(self.id)
            return True
        return False

    def acknowledge(self) -> None:
        super().acknowledge()
        # Celery's per-task Request replaces on_success; what it still does on
        # success is mark the request successful, then acknowledge it.
        finished = finished_of(self.task)
        if finished is not None and self.id and succeeded_here(self.id):
            finished.add(self.id)


def finished_of(task: Any) -> FinishedTasks | None:
    finished = getattr(task, "cargo_finished", None)
    return finished if isinstance(finished, FinishedTasks) else None


def guard_duplicates(task_cls: type[CargoBaseTask], broker_url: str) -> None:
    """Give the app's task class the guarded Request, its own memory of outcomes
    and the stream lookup for redelivered messages."""
    task_cls.Request = f"{__name__}:GuardedRequest"
    task_cls.cargo_finished = FinishedTasks()  # type: ignore[attr-defined]
    task_cls.cargo_stream_lookup = functools.partial(  # type: ignore[attr-defined]
        succeeded_on_stream, broker_url)


__all__ = ["FinishedTasks", "GuardedRequest", "guard_duplicates"]
