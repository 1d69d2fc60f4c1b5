"""``GET /tasks``: the recent tasks this gateway replica knows, most recently updated first.

A replica knows what it read on the events stream (every replica reads all of
it, from ``CARGO_EVENTS_REPLAY_SECONDS`` back when it starts) and its own
submissions: the latest state of at most ``CARGO_TASK_STORE_SIZE`` tasks, the
least recently updated forgotten first (``gateway.store.TaskStore``). This
route reads that memory; it is no history of every task.

Each item is the task as ``GET /tasks/{id}`` returns it, plus two fields for a
client that also follows the WebSocket (the console): ``cursor``, the stream
cursor of the latest event the replica applied to the task (absent while it
has only the replica's own ``queued``), and ``updated_at``, the time of the
latest change. An event with a higher cursor is newer than the item; one with
the same or a lower cursor is already in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, cast

from aiohttp import web
from multidict import MultiMapping

from broker.events import TaskState, rfc3339
from gateway.errors import ApiError
from gateway.keys import HUB_KEY
from gateway.responses import TaskList, TaskListItem
from gateway.store import TaskRecord

routes = web.RouteTableDef()

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Plain decimal digits only: int() would also take " 5", "+5", "1_0" and other scripts' digits.
_DIGITS = re.compile(r"[0-9]{1,9}")
_STATES = {state.value: state for state in TaskState}


@dataclass(frozen=True, slots=True)
class RecentQuery:
    """What ``GET /tasks`` was asked for: at most ``limit`` tasks, of this state and name."""

    limit: int = DEFAULT_LIMIT
    state: TaskState | None = None
    name: str | None = None

    @classmethod
    def parse(cls, query: MultiMapping[str]) -> RecentQuery:
        """The query string's ``limit``, ``state`` and ``name``; every bad one is named in
        one ``422 invalid_arguments``. An empty ``state`` or ``name`` means no filter."""
        problems: list[dict[str, Any]] = []

        def single(key: str) -> str | None:
            values = query.getall(key, [])
            if len(values) > 1:
                problems.append({"loc": ["query", key],
                                 "msg": f"given once, not {len(values)} times"})
                return None
            return values[0] if values else None

        raw_limit, raw_state, name = single("limit"), single("state"), single("name")
        limit = DEFAULT_LIMIT
        if raw_limit is not None:
            if _DIGITS.fullmatch(raw_limit) and 1 <= int(raw_limit) <= MAX_LIMIT:
                limit = int(raw_limit)
            else:
                problems.append({"loc": ["query", "limit"],
                                 "msg": f"an integer from 1 to {MAX_LIMIT}, not {raw_limit!r}"})
        state = None
        if raw_state:
            state = _STATES.get(raw_state)
            if state is None:
                problems.append({"loc": ["query", "state"],
                                 "msg": f"one of {', '.join(_STATES)}, not {raw_state!r}"})
        if problems:
            raise ApiError(422, "invalid_arguments", "; ".join(
                f"{p['loc'][1]} must be {p['msg']}" for p in problems), problems)
        return cls(limit, state, name or None)

    def matches(self, record: TaskRecord) -> bool:
        return ((self.state is None or record.state is self.state)
                and (self.name is None or record.name == self.name))


def recent(records: Iterator[TaskRecord], query: RecentQuery) -> list[TaskRecord]:
    """The first ``query.limit`` records that match, in the given order."""
    return list(islice((r for r in records if query.matches(r)), query.limit))


def item(record: TaskRecord) -> TaskListItem:
    """One task of the list: ``GET /tasks/{id}``'s document with ``cursor`` and ``updated_at``."""
    # The task document (a new dict per call) becomes the item by gaining two keys.
    doc = cast(TaskListItem, record.to_json())
    times = [t for t in (record.submitted_at, record.started_at, record.finished_at) if t]
    if record.last_event is not None:
        assert record.last_event.cursor is not None  # the store keeps stream events only
        doc["cursor"] = str(record.last_event.cursor)
        times.append(record.last_event.ts)
    doc["updated_at"] = rfc3339(max(times))
    return doc


@routes.get("/tasks")
async def list_recent_tasks(request: web.Request) -> web.Response:
    query = RecentQuery.parse(request.query)
    # Read in one go, without awaiting: the store is a live view (TaskStore.most_recent_first).
    records = recent(request.app[HUB_KEY].store.most_recent_first(), query)
    return web.json_response(TaskList(items=[item(record) for record in records]))
