"""The shapes of the gateway's JSON answers, and the OpenAPI schemas generated from them.

Each answer is a ``TypedDict``: the handler builds the very dict it sends
(mypy checks its keys and types against the shape), and
:func:`component_schemas` derives the OpenAPI document's
``components.schemas`` from the same classes with pydantic, so the document
cannot describe another shape than the one sent. ``NotRequired`` is a field
that may be absent; ``X | None`` one that is present and may be null (the
contract, ``/work/shared/API.md``, tells the two apart).

TypedDicts rather than models: building one is building a plain dict, with no
validation on the way out (``POST /tasks/{name}`` answers thousands of times a
second).
"""

from __future__ import annotations

import copy
import functools
from typing import Annotated, Any, Literal, NotRequired

from pydantic import ConfigDict, Field, TypeAdapter, WithJsonSchema, with_config
from typing_extensions import TypedDict  # pydantic reads TypedDicts from here before 3.12

from broker.events import TaskState

REF_TEMPLATE = "#/components/schemas/{model}"

# Times are sent as RFC 3339 text (``broker.events.rfc3339``), built by the handlers.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
# Also the schema of GET /tasks's ``state`` parameter (gateway.openapi).
TASK_STATE_SCHEMA: dict[str, Any] = {"type": "string", "enum": [s.value for s in TaskState]}
TaskStateName = Annotated[str, WithJsonSchema(TASK_STATE_SCHEMA)]
Count = Annotated[int, Field(ge=0)]


# Open: the store passes on the error object of any event on the stream as it came.
@with_config(ConfigDict(extra="allow"))
class TaskError(TypedDict):
    """Why a task attempt failed: the exception's type and message."""

    type: str
    message: str


class Accepted(TypedDict):
    """``202`` to a submission."""

    task_id: str
    name: str
    state: Literal["queued"]
    status_url: str
    stream_url: str


class Task(TypedDict):
    """``GET /tasks/{task_id}``: the latest known state of a task."""

    task_id: str
    name: str
    state: TaskStateName
    retries: int
    submitted_at: Timestamp
    # Present once succeeded (a task may return null), else only when not null.
    result: NotRequired[Any]
    error: NotRequired[TaskError]
    reason: NotRequired[str]
    progress: NotRequired[Any]
    started_at: NotRequired[Timestamp]
    finished_at: NotRequired[Timestamp]


class TaskListItem(Task):
    """One task of ``GET /tasks``: the task document and where it stands on the stream."""

    cursor: NotRequired[Annotated[str, Field(
        description="stream cursor of the latest event applied to the task (absent while "
                    "the replica has only its own queued)")]]
    updated_at: Annotated[Timestamp, Field(description="when the task last changed")]


class TaskList(TypedDict):
    items: list[TaskListItem]


class RevokeAccepted(TypedDict):
    """``202`` to ``DELETE /tasks/{task_id}``: the state the task had when asked."""

    task_id: str
    state: TaskStateName


class DeadLetter(TypedDict):
    """One dead-lettered message (``broker.deadletter.DeadLetter.to_item``)."""

    task_id: str | None
    name: str | None
    queue: str
    reason: str | None
    error: NotRequired[TaskError]
    dead_lettered_at: Timestamp | None
    args: list[Any] | None
    kwargs: dict[str, Any] | None
    undecodable: NotRequired[Annotated[str, Field(
        description="why args and kwargs are null: the body could not be read")]]


class DeadLetterPage(TypedDict):
    items: list[DeadLetter]
    next: NotRequired[Annotated[str, Field(description="URL of the following page")]]


class ReplayAccepted(TypedDict):
    """``202`` to a dead letter's replay."""

    task_id: str


class Purged(TypedDict):
    """How many dead letters a purge deleted."""

    purged: Count


class CatalogTaskLimits(TypedDict):
    time_limit: NotRequired[float]
    soft_time_limit: NotRequired[float]
    memory_limit_mb: int
    max_retries: int


class CatalogTask(TypedDict):
    """One task of ``GET /catalog`` (``broker.catalog.CatalogEntry.to_json``)."""

    name: str
    queue: str
    schema: Annotated[dict[str, Any], Field(
        description="JSON Schema of the arguments (allOf the live schemas during a "
                    "rolling deploy)")]
    doc: NotRequired[str]
    limits: CatalogTaskLimits
    workers: Annotated[int, Field(description="live workers offering it")]
    missing_on: NotRequired[Annotated[list[str], Field(
        description="live workers consuming the task's queue that do not offer it")]]


class Catalog(TypedDict):
    items: list[CatalogTask]


class DeadLetterDepth(TypedDict):
    name: str
    ready: Count


class QueueItem(TypedDict):
    """One queue of ``GET /queues`` (``gateway.queue_stats.queue_items``)."""

    name: str
    ready: Count
    unacked: Count
    consumers: Count
    dead_letter: DeadLetterDepth


class Queues(TypedDict):
    queues: list[QueueItem]


class Worker(TypedDict):
    """One live worker of ``GET /workers``, from its catalog announcement."""

    hostname: Annotated[str, Field(description="Celery node name")]
    queues: Annotated[list[str], Field(description="the queues it consumes")]
    concurrency: Annotated[Count | None, Field(
        description="pool processes (null: an older worker)")]
    rss_bytes: Annotated[Count | None, Field(
        description="resident memory of its whole process tree (main process, pool "
                    "children and what they started); null: an older worker")]
    processes: Annotated[Count | None, Field(
        description="processes in that tree (null: an older worker)")]
    last_seen: Annotated[Timestamp, Field(description="when it last announced itself")]


class Workers(TypedDict):
    workers: list[Worker]


class ErrorInfo(TypedDict):
    code: str
    message: str
    details: NotRequired[Any]


class Error(TypedDict):
    """Every error answer: ``{"error": {"code", "message", "details"?}}``."""

    error: ErrorInfo


class Health(TypedDict):
    status: Literal["ok"]


class ReadinessChecks(TypedDict):
    """Each check: ``ok``, or what it is waiting for."""

    broker: str
    catalog: str
    events: str


class Readiness(TypedDict):
    status: Literal["ready", "not_ready"]
    checks: ReadinessChecks


# The answers the document names; the classes they contain follow by reference.
DOCUMENTED = (Accepted, Task, TaskList, RevokeAccepted, DeadLetterPage, ReplayAccepted,
              Purged, Catalog, Queues, Workers, Error, Health, Readiness)


@functools.cache
def _generated() -> dict[str, Any]:
    # Generated once per process: the classes do not change while it runs.
    _, top = TypeAdapter.json_schemas(
        [(shape, "serialization", TypeAdapter(shape)) for shape in DOCUMENTED],
        ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = top["$defs"]
    for schema in schemas.values():
        # Exact: a key sent but not declared here fails the drift test
        # (tests/integration/test_openapi_matches_responses.py) instead of going unnoticed.
        schema.setdefault("additionalProperties", False)
    return schemas


def component_schemas() -> dict[str, Any]:
    """``components.schemas`` for every answer in :data:`DOCUMENTED`, by class name."""
    return copy.deepcopy(_generated())


def ref(shape: type) -> dict[str, str]:
    """A ``$ref`` to the component schema of ``shape``."""
    return {"$ref": REF_TEMPLATE.format(model=shape.__name__)}
