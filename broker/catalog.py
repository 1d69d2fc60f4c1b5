"""The task catalog workers announce, and what gateways make of it.

Each worker publishes an :class:`Announcement` to the ``cargo.catalog`` stream
(``broker.topology``) when it connects, every ``CARGO_CATALOG_INTERVAL``
seconds after, and a withdrawal when it stops. Gateways and the bridge read
the stream (from a little before they started, so they know every live worker
at once) and keep a :class:`Catalog`: the tasks some live worker offers. They
import no task code; what a task accepts is the JSON Schema its worker announced
(``broker.arguments``).

Liveness: a worker's announcement holds for its ``ttl`` (three intervals) after
it was made; a worker that stopped or died stops being live then, or at once
when it withdrew.

A rolling deploy (live workers announcing different things for one name):
- the arguments a gateway accepts are those **every** live announcement
  accepts (any of those workers may take the message);
- the queue, doc and limits are those of the most recently started worker
  (the deploy's new version), so new submissions go where the new workers
  read; until the old workers are gone, a task whose queue changed is
  published to the new queue;
- a task is accepted only while **every** live worker consuming its queue
  offers it: a worker that does not know a task dead-letters its message as
  ``poison``, so a task added by a deploy waits for the old workers on its
  queue to go (the gateway answers 503 ``task_not_on_every_worker`` until
  then), and so does a task on a queue two differently-loaded pools share.

Announcements are untrusted input: one that does not decode, whose schema is
not one Cargo can check, or that names another vhost is dropped and counted,
never applied.

What a worker holds (for ``GET /workers``): its concurrency, and the number of
processes and resident memory of its process tree, travel in the message's
headers (:data:`FIGURE_HEADERS`), not in its body. Gateways and bridges refuse
an announcement body with a field they do not know (``extra="forbid"``): in the
body, the figures would make every gateway of an older release drop every
worker of this one during a rolling deploy (and answer 404 to every task once
the old workers are gone). Older gateways ignore headers; an announcement
without them (an older worker's) decodes with the figures null.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from broker.arguments import ArgumentsSchema, InvalidArguments, InvalidSchema
from broker.topology import check_queue_name

CONTENT_TYPE = "application/json"
# Far larger than any real catalog (a few KiB per task); bigger is refused unread.
MAX_ANNOUNCEMENT_BYTES = 4 * 1024 * 1024
TASK_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,199}$"
# The announcement's fields that travel as message headers (see the module docstring).
FIGURE_HEADERS = {
    "concurrency": "x-cargo-concurrency",
    "processes": "x-cargo-processes",
    "rss_bytes": "x-cargo-rss-bytes",
}
# Bounds of those figures: anything beyond is no real worker's.
MAX_PROCESSES = 1_000_000
MAX_RSS_BYTES = 1 << 50  # 1 PiB


class InvalidAnnouncement(ValueError):
    """A catalog message a gateway must not apply; ``reason`` is a metric label."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def is_task_queue_name(name: str) -> bool:
    """Whether ``name`` may be a task queue (``broker.topology.check_queue_name``)."""
    try:
        check_queue_name(name)
    except ValueError:
        return False
    return True


class TaskLimits(BaseModel):
    """What a task may use, as its worker enforces it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_limit: float | None = Field(default=None, gt=0)
    soft_time_limit: float | None = Field(default=None, gt=0)
    memory_limit_mb: int = Field(gt=0)
    max_retries: int = Field(ge=0)


class AnnouncedTask(BaseModel):
    """One task of a worker's catalog (``GET /catalog`` lists these)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=TASK_NAME_PATTERN)
    queue: str
    arguments: dict[str, Any] = Field(alias="schema")
    doc: str | None = Field(default=None, max_length=1000)
    limits: TaskLimits

    @field_validator("queue")
    @classmethod
    def _queue_name(cls, value: str) -> str:
        check_queue_name(value)
        return value

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Announcement(BaseModel):
    """A worker's whole catalog at one moment (or its withdrawal)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["cargo.catalog"] = "cargo.catalog"
    version: Literal[1] = 1
    worker: str = Field(min_length=1, max_length=255)
    vhost: str = Field(min_length=1, max_length=255)
    started_at: datetime
    announced_at: datetime
    ttl: float = Field(gt=0, le=86_400)
    queues: tuple[str, ...] = ()
    tasks: tuple[AnnouncedTask, ...] = ()
    withdrawn: bool = False
    # Headers on the wire (FIGURE_HEADERS); None: not announced (an older worker).
    # Strict: a header holding "2", 2.5 or true is no count.
    concurrency: int | None = Field(default=None, ge=0, le=MAX_PROCESSES, strict=True)
    processes: int | None = Field(default=None, ge=0, le=MAX_PROCESSES, strict=True)
    rss_bytes: int | None = Field(default=None, ge=0, le=MAX_RSS_BYTES, strict=True)

    @field_validator("started_at", "announced_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must include a timezone")
        return value.astimezone(UTC)

    @property
    def expires_at(self) -> datetime:
        return self.announced_at + timedelta(seconds=self.ttl)

    def encode(self) -> bytes:
        """The message body: every field but the figures (those are :meth:`headers`)."""
        return self.model_dump_json(by_alias=True, exclude_none=True,
                                    exclude=set(FIGURE_HEADERS)).encode()

    def headers(self) -> dict[str, int]:
        """The message headers: the figures this announcement has."""
        figures = {field: getattr(self, field) for field in FIGURE_HEADERS}
        return {header: figures[field] for field, header in FIGURE_HEADERS.items()
                if figures[field] is not None}


def decode_announcement(body: bytes, vhost: str,
                        headers: Mapping[str, Any] | None = None) -> Announcement:
    """The announcement in ``body`` and ``headers``, checked; raises
    :class:`InvalidAnnouncement`. Headers other than :data:`FIGURE_HEADERS` are
    ignored (the broker adds its own, e.g. the stream offset)."""
    if len(body) > MAX_ANNOUNCEMENT_BYTES:
        raise InvalidAnnouncement("too_large", f"announcement of {len(body)} bytes")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidAnnouncement("malformed", f"not JSON: {exc}") from None
    if isinstance(doc, dict) and headers:
        # A figure is checked like any field: a bad one refuses the announcement.
        doc.update({field: headers[header] for field, header in FIGURE_HEADERS.items()
                    if header in headers})
    try:
        announcement = Announcement.model_validate(doc)
    except ValidationError as exc:
        raise InvalidAnnouncement("malformed", f"not a catalog announcement: "
                                               f"{exc.errors(include_url=False)[:3]}") from None
    if announcement.vhost != vhost:
        raise InvalidAnnouncement("foreign_vhost", f"announced for vhost "
                                                   f"{announcement.vhost!r}, not {vhost!r}")
    for task in announcement.tasks:
        try:
            compiled_schema(canonical_schema(task.arguments))
        except (InvalidSchema, RecursionError) as exc:
            raise InvalidAnnouncement("invalid_schema",
                                      f"task {task.name!r}: {exc}") from None
    return announcement


def canonical_schema(schema: dict[str, Any]) -> str:
    """The schema as one text, the cache key below. Its key order is kept (not
    sorted): problems are reported in the order of the schema's properties, and a
    worker announces the same schema in the same order every time."""
    return json.dumps(schema)


@functools.lru_cache(maxsize=1024)
def compiled_schema(canonical: str) -> ArgumentsSchema:
    """Check and compile a schema once: workers re-announce the same schemas every
    interval, and compiling one costs far more than recognising it. The decoder
    checks with it and the catalog validates with the same object (a refused
    schema is not cached: it raises)."""
    return ArgumentsSchema(json.loads(canonical))


@dataclass(frozen=True)
class CatalogEntry:
    """A task as the live workers offer it (see the rolling-deploy rule above)."""

    task: AnnouncedTask  # the newest worker's: queue, doc, limits
    schemas: tuple[ArgumentsSchema, ...]  # every distinct live schema
    workers: tuple[str, ...]
    # Live workers that consume the task's queue but do not offer the task.
    missing: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def queue(self) -> str:
        return self.task.queue

    def validate(self, args: object, kwargs: object) -> None:
        """Raise :class:`InvalidArguments` unless every live schema accepts the call."""
        if len(self.schemas) == 1:
            self.schemas[0].validate(args, kwargs)
            return
        errors: list[dict[str, Any]] = []
        for schema in self.schemas:
            try:
                schema.validate(args, kwargs)
            except InvalidArguments as exc:
                errors.extend(e for e in exc.errors if e not in errors)
        if errors:
            raise InvalidArguments(errors)

    def to_json(self) -> dict[str, Any]:
        doc = self.task.to_json()
        if len(self.schemas) > 1:
            # Accepted: what all of them accept (JSON Schema's allOf says exactly that).
            doc["schema"] = {"allOf": [s.schema for s in self.schemas]}
        doc["workers"] = len(self.workers)
        if self.missing:
            doc["missing_on"] = list(self.missing)
        return doc


@dataclass
class Catalog:
    """The live catalog: the latest announcement of each worker, until it expires."""

    vhost: str
    _workers: dict[str, Announcement] = field(default_factory=dict)
    _entries: dict[str, CatalogEntry] | None = None
    _valid_until: datetime | None = None

    def apply(self, announcement: Announcement) -> bool:
        """Take a worker's announcement; False when an older one arrived late."""
        current = self._workers.get(announcement.worker)
        if current is not None and current.announced_at > announcement.announced_at:
            return False
        if announcement.withdrawn:
            self._workers.pop(announcement.worker, None)
        else:
            self._workers[announcement.worker] = announcement
        self._entries = None
        return True

    def live_workers(self, now: datetime | None = None) -> list[Announcement]:
        now = now or datetime.now(UTC)
        return [a for a in self._workers.values() if a.expires_at > now]

    def queues(self, now: datetime | None = None) -> list[str]:
        """The task queues live workers consume or route an announced task to, sorted.

        An announcement's ``queues`` are not checked on decoding (a worker reports
        what Celery consumes); only names that may be task queues are listed.
        """
        names = {task.queue for task in self.entries(now).values()}
        for announcement in self.live_workers(now):
            names.update(announcement.queues)
        return sorted(name for name in names if is_task_queue_name(name))

    def entries(self, now: datetime | None = None) -> dict[str, CatalogEntry]:
        """Every task some live worker offers, by name."""
        now = now or datetime.now(UTC)
        if self._entries is not None and self._valid_until is not None \
                and now < self._valid_until:
            return self._entries
        live = sorted(self.live_workers(now), key=lambda a: (a.started_at, a.worker))
        # Forget the dead for good (they come back by announcing again).
        for gone in set(self._workers) - {a.worker for a in live}:
            del self._workers[gone]
        offers: dict[str, list[tuple[Announcement, AnnouncedTask]]] = {}
        for announcement in live:
            for task in announcement.tasks:
                offers.setdefault(task.name, []).append((announcement, task))
        entries: dict[str, CatalogEntry] = {}
        for name, offered in sorted(offers.items()):
            schemas: dict[str, ArgumentsSchema] = {}
            for _, task in offered:
                key = canonical_schema(task.arguments)
                schemas.setdefault(key, compiled_schema(key))
            newest = offered[-1][1]
            offering = {a.worker for a, _ in offered}
            missing = tuple(a.worker for a in live
                            if newest.queue in a.queues and a.worker not in offering)
            entries[name] = CatalogEntry(newest, tuple(schemas.values()),
                                         tuple(a.worker for a, _ in offered), missing)
        self._entries = entries
        self._valid_until = min((a.expires_at for a in live), default=None)
        return entries

    def get(self, name: str, now: datetime | None = None) -> CatalogEntry | None:
        return self.entries(now).get(name)

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.entries().values())

    def __len__(self) -> int:
        return len(self.entries())
