"""What a gateway replica knows about recent tasks, built from the events stream.

Two bounded structures, both fed in stream order:

- :class:`TaskStore` — the latest state of each recent task (``GET /tasks/{id}``
  and the first frame a WebSocket subscriber gets), least recently updated
  evicted first.
- :class:`EventRing` — the most recent events with their cursors, so a client
  reconnecting with ``since`` is replayed from memory.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from broker.events import TaskEvent, TaskState, rfc3339
from gateway.responses import Task, TaskError


@dataclass(slots=True)
class TaskRecord:
    task_id: str
    name: str
    state: TaskState
    submitted_at: datetime
    retries: int = 0
    result: Any = None
    error: dict[str, str] | None = None
    reason: str | None = None
    progress: Any = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # The latest event read from the stream (with its cursor), for subscribers.
    last_event: TaskEvent | None = None

    def to_json(self) -> Task:
        """``GET /tasks/{task_id}``'s document: the optional fields only when not null,
        but ``result`` always once succeeded (a task may legitimately return null)."""
        doc = Task(task_id=self.task_id, name=self.name, state=self.state.value,
                   retries=self.retries, submitted_at=rfc3339(self.submitted_at))
        if self.result is not None or self.state is TaskState.SUCCEEDED:
            doc["result"] = self.result
        if self.error is not None:
            doc["error"] = cast(TaskError, self.error)  # passed on as the event carried it
        if self.reason is not None:
            doc["reason"] = self.reason
        if self.progress is not None:
            doc["progress"] = self.progress
        if self.started_at:
            doc["started_at"] = rfc3339(self.started_at)
        if self.finished_at:
            doc["finished_at"] = rfc3339(self.finished_at)
        return doc


class TaskStore:
    """Latest state per task id, bounded (least recently updated evicted first)."""

    def __init__(self, max_tasks: int) -> None:
        self._max = max_tasks
        self._tasks: OrderedDict[str, TaskRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tasks)

    def get(self, task_id: str) -> TaskRecord | None:
        return self._tasks.get(task_id)

    def most_recent_first(self) -> Iterator[TaskRecord]:
        """Every record, the most recently updated first (``GET /tasks``).

        A live view of the store: consume it without awaiting in between (an
        event applied meanwhile would end the iteration with a RuntimeError).
        """
        return reversed(self._tasks.values())

    def apply(self, event: TaskEvent) -> bool:
        """Fold one event into its task's record.

        False when the record ignores it: a ``queued`` announcement that reached
        the stream after the task had already started (the gateway announces a
        task once RabbitMQ confirmed it, and a worker can be faster), or a late
        event that would move a finished task out of its terminal state
        (``_ends_nothing``). Such an event is stale: delivered, it would read
        as the task going back to the queue or running again.
        """
        record = self._tasks.get(event.task_id)
        if record is None:
            record = TaskRecord(event.task_id, event.name, event.state, submitted_at=event.ts)
            self._tasks[event.task_id] = record
            while len(self._tasks) > self._max:
                self._tasks.popitem(last=False)
        elif _ends_nothing(record.state, event.state):
            return False
        else:
            self._tasks.move_to_end(event.task_id)
        if not _fold(record, event):
            return False
        if event.cursor is not None:
            record.last_event = event
        return True


def _fold(record: TaskRecord, event: TaskEvent) -> bool:
    """Apply ``event`` to ``record``; False when the record ignores it."""
    state = event.state
    if state is TaskState.QUEUED:
        # A queued event can reach the stream after the worker's first event (it
        # is published once the task itself is confirmed); it only restarts a
        # record that had finished before it was queued again (a replay).
        if record.state is TaskState.QUEUED or (
            record.state.terminal and record.finished_at and event.ts > record.finished_at
        ):
            _restart(record, event)
            return True
        return False
    if state is TaskState.STARTED and record.state.terminal:
        _restart(record, event)
    record.state = state
    if event.retries is not None:
        record.retries = event.retries
    if state is TaskState.STARTED:
        record.started_at = event.ts
        record.error = None
    elif state is TaskState.PROGRESS:
        record.progress = event.progress
    elif state in (TaskState.FAILED, TaskState.RETRYING):
        record.error = event.error or record.error
    if state.terminal:
        record.finished_at = event.ts
        record.result = event.result
        record.reason = event.reason
        if event.error is not None:
            record.error = event.error
    return True


# Events that report on an attempt still going (or its failure before a retry).
_ATTEMPT_EVENTS = frozenset({TaskState.PROGRESS, TaskState.FAILED, TaskState.RETRYING})


def _ends_nothing(current: TaskState, state: TaskState) -> bool:
    """True for an event that must not move a finished task out of its terminal
    state: every task reaches exactly one terminal state (API.md).

    ``succeeded`` is final: its result was reported and a worker never runs a
    succeeded task id again on purpose, so whatever follows it is a late echo of
    a duplicate delivery (a worker that lost its broker connection between the
    outcome and the ack, or an at-least-once re-run), never news. After
    ``dead_lettered`` or ``revoked`` only a new run counts (``started`` or a
    newer ``queued``: a dead letter replayed with its id); a late ``progress``,
    ``failed`` or ``retrying`` belongs to the attempt that already ended.
    """
    if current is TaskState.SUCCEEDED:
        return True
    return current.terminal and state in _ATTEMPT_EVENTS


def _restart(record: TaskRecord, event: TaskEvent) -> None:
    record.state = event.state
    record.name = event.name
    if event.state is TaskState.QUEUED:
        record.submitted_at = event.ts
        record.started_at = None
    record.result = record.error = record.reason = record.progress = None
    record.finished_at = None


class StaleEventFilter:
    """Recognises stale ``queued`` events among events read back from the stream,
    where the store's state (which is the present, not the replay's past) cannot.

    By time rather than by state, to the same effect as ``TaskStore.apply``: a
    ``queued`` event is stale when an earlier event of its task in stream order
    is newer than it (the task had started already); a replayed task's
    ``queued`` is newer than everything before it and passes. Remembers the
    latest time of the ``max_tasks`` most recently seen tasks: a stale
    announcement trails its task by moments, not by tens of thousands of tasks.
    Like the store, it drops what would move a finished task out of its terminal
    state (``_ends_nothing``).
    """

    def __init__(self, max_tasks: int = 50_000) -> None:
        self._max = max_tasks
        # task id -> (latest event time, state of its latest admitted event)
        self._latest: OrderedDict[str, tuple[datetime, TaskState]] = OrderedDict()

    def admits(self, event: TaskEvent) -> bool:
        latest, state = self._latest.pop(event.task_id, (None, None))
        if latest is not None and state is not None and (
            (event.state is TaskState.QUEUED and latest > event.ts)
            or _ends_nothing(state, event.state)
        ):
            self._latest[event.task_id] = (latest, state)
            return False
        self._latest[event.task_id] = (
            event.ts if latest is None else max(latest, event.ts), event.state)
        if len(self._latest) > self._max:
            self._latest.popitem(last=False)
        return True


class EventRing:
    """The most recent stream events, oldest first, for ``since`` replays."""

    def __init__(self, size: int) -> None:
        self._events: deque[TaskEvent] = deque()
        self._size = size
        # Every task event with a cursor above this one is in the ring; None until
        # the first event arrives (the reader may have started mid-stream).
        self.complete_after: int | None = None

    def append(self, event: TaskEvent) -> None:
        assert event.cursor is not None
        if self.complete_after is None:
            self.complete_after = event.cursor - 1
        self._events.append(event)
        if len(self._events) > self._size:
            evicted = self._events.popleft()
            assert evicted.cursor is not None
            self.complete_after = evicted.cursor

    def covers(self, since: int) -> bool:
        """True when every task event after ``since`` is still in memory."""
        return self.complete_after is not None and since >= self.complete_after

    def after(self, since: int) -> Iterator[TaskEvent]:
        for event in self._events:
            if event.cursor is not None and event.cursor > since:
                yield event
