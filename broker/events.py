"""Task lifecycle events: the one format workers write and gateways read.

An event is a small JSON object published to the events exchange, which feeds
the events stream. Its position in the stream (the ``x-stream-offset`` RabbitMQ
attaches on delivery) is the client-visible ``cursor``: every gateway replica
reads the same stream, so a cursor from one replica means the same on another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

CONTENT_TYPE = "application/json"
EVENT_TYPE = "cargo.task.event.v1"
BATCH_TYPE = "cargo.task.events.v1"
# One stream message may carry a batch of events (the gateway batches ``queued``
# events); an event's cursor is ``offset * CURSOR_SCALE + index in the message``,
# so cursors stay unique, increasing and the same on every replica.
CURSOR_SCALE = 1024
MAX_BATCH = 1000


class TaskState(StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    RETRYING = "retrying"
    FAILED = "failed"
    SUCCEEDED = "succeeded"
    DEAD_LETTERED = "dead_lettered"
    REVOKED = "revoked"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({TaskState.SUCCEEDED, TaskState.DEAD_LETTERED, TaskState.REVOKED})
# A dict lookup is several times cheaper than TaskState(value), per event read.
_STATES = {state.value: state for state in TaskState}


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` and millisecond precision."""
    if moment.tzinfo is not UTC:  # every event's own time already is (a fast path)
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_rfc3339(text: str) -> datetime:
    moment = datetime.fromisoformat(text)  # Python 3.11 reads the "Z" itself
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


class EventDecodeError(ValueError):
    """Bytes on the events stream that are not a Cargo task event."""


@dataclass(frozen=True, slots=True)
class TaskEvent:
    task_id: str
    name: str
    state: TaskState
    ts: datetime
    result: Any = None
    error: dict[str, str] | None = None
    reason: str | None = None
    progress: Any = None
    retries: int | None = None
    queue: str | None = None
    hostname: str | None = None
    # On ``queued`` announcements of idempotent submissions (gateway.idempotency):
    # a digest of the Idempotency-Key and the request's fingerprint, so every
    # replica learns the key. Never sent to WebSocket clients.
    idempotency_key: str | None = None
    fingerprint: str | None = None
    # Set only when read back from the stream.
    cursor: int | None = None

    def to_json(self) -> bytes:
        return json.dumps(self.to_doc(), separators=(",", ":"), default=str).encode()

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": EVENT_TYPE,
            "task_id": self.task_id,
            "name": self.name,
            "state": self.state.value,
            "ts": rfc3339(self.ts),
        }
        # Spelled out rather than a getattr loop: this runs for every event published.
        if self.result is not None:
            doc["result"] = self.result
        if self.error is not None:
            doc["error"] = self.error
        if self.reason is not None:
            doc["reason"] = self.reason
        if self.progress is not None:
            doc["progress"] = self.progress
        if self.retries is not None:
            doc["retries"] = self.retries
        if self.queue is not None:
            doc["queue"] = self.queue
        if self.hostname is not None:
            doc["hostname"] = self.hostname
        if self.idempotency_key is not None:
            doc["idempotency_key"] = self.idempotency_key
            doc["fingerprint"] = self.fingerprint
        return doc

    def to_client(self) -> dict[str, Any]:
        """The WebSocket ``event`` frame of the API contract."""
        doc: dict[str, Any] = {
            "type": "event",
            "task_id": self.task_id,
            "name": self.name,
            "state": self.state.value,
            "cursor": str(self.cursor) if self.cursor is not None else None,
            "ts": rfc3339(self.ts),
        }
        for key in ("result", "error", "reason", "progress", "retries"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        return doc

    @classmethod
    def from_doc(cls, doc: Any, cursor: int | None = None) -> TaskEvent:
        try:
            if not isinstance(doc, dict) or doc.get("type") != EVENT_TYPE:
                raise EventDecodeError("not a Cargo task event")
            error = doc.get("error")
            return cls(
                task_id=str(doc["task_id"]),
                name=str(doc["name"]),
                state=_STATES[doc["state"]],
                ts=parse_rfc3339(str(doc["ts"])),
                result=doc.get("result"),
                error=dict(error) if isinstance(error, dict) else None,
                reason=doc.get("reason"),
                progress=doc.get("progress"),
                retries=doc.get("retries"),
                queue=doc.get("queue"),
                hostname=doc.get("hostname"),
                idempotency_key=_text_or_none(doc.get("idempotency_key")),
                fingerprint=_text_or_none(doc.get("fingerprint")),
                cursor=cursor,
            )
        except EventDecodeError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise EventDecodeError(f"malformed task event: {exc}") from None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def encode_batch(events: list[TaskEvent]) -> bytes:
    """One stream message carrying several events, in order."""
    if not 0 < len(events) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} events")
    doc = {"type": BATCH_TYPE, "events": [e.to_doc() for e in events]}
    return json.dumps(doc, separators=(",", ":"), default=str).encode()


def decode_stream_message(body: bytes, offset: int) -> list[TaskEvent]:
    """The events in one stream message (one event or a batch), with their cursors."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise EventDecodeError(f"not JSON: {exc}") from None
    base = offset * CURSOR_SCALE
    if isinstance(doc, dict) and doc.get("type") == BATCH_TYPE:
        items = doc.get("events")
        if not isinstance(items, list) or len(items) > MAX_BATCH:
            raise EventDecodeError("malformed event batch")
        return [TaskEvent.from_doc(item, base + i) for i, item in enumerate(items)]
    return [TaskEvent.from_doc(doc, base)]


def cursor_offset(cursor: int) -> int:
    """The stream offset of the message that holds the event at ``cursor``."""
    return cursor // CURSOR_SCALE


def error_of(exc: BaseException) -> dict[str, str]:
    """The contract's ``error`` object for an exception."""
    return {"type": type(exc).__name__, "message": str(exc)}
