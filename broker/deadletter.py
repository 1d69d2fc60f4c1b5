"""Dead letters: reasons, headers, and reading a dead-lettered message back.

Pure functions, shared by the workers (which dead-letter messages and emit
``dead_lettered`` events), the gateway (``/dead-letters``) and ``cargoctl``.

A message reaches ``<queue>.XQ`` in one of two ways:

- **Cargo dead-letters it** (a worker publishes the original message, body and
  headers unchanged, to ``cargo.dlx`` and only then acknowledges it): the
  reason and error travel in Cargo's ``x-cargo-*`` headers.
- **RabbitMQ dead-letters it** (the quorum queue's delivery limit, or a task
  rejecting its own message): RabbitMQ adds ``x-death`` and
  ``x-first-death-reason`` and Cargo maps its reason (``delivery_limit``,
  ``rejected``) to the same vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from broker.celery_protocol import ProtocolError, check_task, decode_body
from broker.events import parse_rfc3339, rfc3339
from broker.topology import (
    CARGO_DEATH_HEADERS,
    DEAD_LETTERED_AT_HEADER,
    DEATH_HEADER,
    ERROR_MESSAGE_HEADER,
    ERROR_TYPE_HEADER,
    FIRST_DEATH_QUEUE_HEADER,
    FIRST_DEATH_REASON_HEADER,
    QUEUE_HEADER,
    RABBITMQ_DEATH_HEADERS,
    REASON_HEADER,
)

# Longest error message carried in a header (AMQP headers travel with every copy).
MAX_ERROR_MESSAGE = 2000


class Reason(StrEnum):
    """Why a task was dead-lettered (the API contract's table)."""

    FAILED = "failed"
    MEMORY_LIMIT = "memory_limit"
    TIME_LIMIT = "time_limit"
    DELIVERY_LIMIT = "delivery_limit"
    POISON = "poison"
    REJECTED = "rejected"


# RabbitMQ's dead-letter reasons, as Cargo names them. ``expired`` and ``maxlen``
# cannot happen with Cargo's queue arguments (no TTL, reject-publish overflow)
# and are passed through as they are if another tool causes them.
_RABBITMQ_REASONS = {"delivery_limit": Reason.DELIVERY_LIMIT, "rejected": Reason.REJECTED}


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return None


def _latest_death(headers: Mapping[str, Any]) -> Mapping[str, Any] | None:
    deaths = headers.get(DEATH_HEADER)
    # RabbitMQ keeps x-death most recent first.
    if isinstance(deaths, list | tuple) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return None


def dead_lettered_by_cargo(headers: Mapping[str, Any] | None) -> bool:
    """True when a Cargo worker dead-lettered the message (and emitted its event)."""
    return bool(headers) and _text((headers or {}).get(REASON_HEADER)) is not None


def reason_of(headers: Mapping[str, Any] | None) -> str | None:
    """The Cargo reason of a dead letter: Cargo's header, else RabbitMQ's x-death.

    Returns a :class:`Reason` value, RabbitMQ's own word for a reason Cargo has
    no name for, or None for a message that was never dead-lettered.
    """
    headers = headers or {}
    cargo = _text(headers.get(REASON_HEADER))
    if cargo:
        return Reason(cargo).value if cargo in Reason.__members__.values() else cargo
    death = _latest_death(headers)
    raw = _text(death.get("reason")) if death is not None else None
    raw = raw or _text(headers.get(FIRST_DEATH_REASON_HEADER))
    if raw is None:
        return None
    return _RABBITMQ_REASONS[raw].value if raw in _RABBITMQ_REASONS else raw


def dead_letter_headers(headers: Mapping[str, Any] | None, *, reason: Reason, queue: str,
                        error: Mapping[str, str] | None = None,
                        now: datetime | None = None) -> dict[str, Any]:
    """The original headers plus Cargo's reason, error, queue and time."""
    result = {k: v for k, v in (headers or {}).items() if k not in CARGO_DEATH_HEADERS}
    result[REASON_HEADER] = reason.value
    result[QUEUE_HEADER] = queue
    result[DEAD_LETTERED_AT_HEADER] = rfc3339(now or datetime.now(UTC))
    if error:
        result[ERROR_TYPE_HEADER] = str(error.get("type", ""))
        result[ERROR_MESSAGE_HEADER] = str(error.get("message", ""))[:MAX_ERROR_MESSAGE]
    return result


def replay_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Headers for running a dead letter again: no dead-letter history, a fresh start.

    Cargo's and RabbitMQ's dead-letter headers go; a Celery message starts
    again with ``retries`` 0, no ``eta`` and no ``expires`` (a replay runs now,
    with the task's whole retry budget).
    """
    drop = set(CARGO_DEATH_HEADERS) | set(RABBITMQ_DEATH_HEADERS)
    result = {k: v for k, v in (headers or {}).items() if k not in drop}
    if "task" in result and "id" in result:
        result["retries"] = 0
        result["eta"] = None
        result["expires"] = None
    return result


def identify(headers: Mapping[str, Any] | None, body: bytes,
             properties: Mapping[str, Any] | None = None) -> tuple[str | None, str | None]:
    """``(task_id, task name)`` of any message, as far as it can be told.

    Celery protocol v2 headers first, then the AMQP ``message_id`` /
    ``correlation_id``, then a Dramatiq-style JSON body (``message_id``,
    ``actor_name``).
    """
    headers = headers or {}
    properties = properties or {}
    task_id = _text(headers.get("id"))
    name = _text(headers.get("task"))
    if task_id is None:
        task_id = _text(properties.get("message_id")) or _text(properties.get("correlation_id"))
    if task_id is None or name is None:
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, a 5000-digit int, nested too deep
            doc = None
        if isinstance(doc, dict):
            task_id = task_id or _text(doc.get("message_id")) or _text(doc.get("id"))
            name = name or _text(doc.get("actor_name")) or _text(doc.get("task"))
    return task_id, name


def poison_problem(headers: Any, body: bytes, properties: Mapping[str, Any] | None,
                   known_tasks: Container[str], *, loads: Callable[[bytes], Any] = json.loads,
                   decompress: bool = True) -> str | None:
    """Why a message on a task queue can never run (None when it can). Never raises.

    A message that is not Celery protocol v2 JSON with every header, property
    and body part of the right type (another framework's, undecodable, the
    wrong shape or types: :func:`broker.celery_protocol.check_task`) or that
    names no task this worker knows.
    """
    if not isinstance(headers, Mapping) or not isinstance(headers.get("task"), str):
        return "not a Celery task message (no 'task' header)"
    try:
        task = check_task(body, headers, properties, loads=loads, decompress=decompress)
    except ProtocolError as exc:
        return f"undecodable task message: {exc}"
    if task.name not in known_tasks:
        return f"no task named {task.name!r}"
    return None


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    text = _text(value)
    if text:
        try:
            return parse_rfc3339(text)
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message, as the API lists it."""

    task_id: str | None
    name: str | None
    queue: str
    reason: str | None
    error: dict[str, str] | None
    dead_lettered_at: datetime | None
    args: list[Any] | None
    kwargs: dict[str, Any] | None
    # Why args/kwargs are null: the message is not a valid Celery task message.
    undecodable: str | None = None

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "task_id": self.task_id,
            "name": self.name,
            "queue": self.queue,
            "reason": self.reason,
            "dead_lettered_at": rfc3339(self.dead_lettered_at) if self.dead_lettered_at else None,
            "args": self.args,
            "kwargs": self.kwargs,
        }
        if self.error is not None:
            item["error"] = self.error
        if self.undecodable is not None:
            item["undecodable"] = self.undecodable
        return item


def parse_dead_letter(body: bytes, headers: Mapping[str, Any] | None,
                      properties: Mapping[str, Any] | None, queue: str) -> DeadLetter:
    """Read a message from ``<queue>.XQ``; ``queue`` is the task queue it belongs to.

    Never raises: a poison message is listed with what can be told about it
    (``args``/``kwargs`` null and ``undecodable`` saying why, when the message
    is not a valid Celery task message).
    """
    try:
        return _parse_dead_letter(body, headers, properties, queue)
    except Exception as exc:  # a listing shows every dead letter, whatever it holds
        return DeadLetter(task_id=None, name=None, queue=queue, reason=None, error=None,
                          dead_lettered_at=None, args=None, kwargs=None,
                          undecodable=f"unreadable dead letter: {type(exc).__name__}")


def _parse_dead_letter(body: bytes, headers: Mapping[str, Any] | None,
                       properties: Mapping[str, Any] | None, queue: str) -> DeadLetter:
    headers = headers if isinstance(headers, Mapping) else {}
    properties = properties if isinstance(properties, Mapping) else {}
    task_id, name = identify(headers, body, properties)
    death = _latest_death(headers)
    origin = (_text(headers.get(QUEUE_HEADER))
              or (_text(death.get("queue")) if death is not None else None)
              or _text(headers.get(FIRST_DEATH_QUEUE_HEADER)) or queue)
    when = _moment(headers.get(DEAD_LETTERED_AT_HEADER))
    if when is None and death is not None:
        when = _moment(death.get("time"))
    error_type = _text(headers.get(ERROR_TYPE_HEADER))
    error = None
    if error_type is not None:
        error = {"type": error_type, "message": _text(headers.get(ERROR_MESSAGE_HEADER)) or ""}
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    undecodable: str | None = None
    # Only the body is read here: why the message was poison is in its error
    # (x-cargo-error-message), and the management API shows AMQP's null header
    # values as the string "undefined", so the headers cannot be checked again.
    try:
        args, kwargs = decode_body(body, headers.get("compression"))
    except ProtocolError as exc:
        undecodable = str(exc)
    return DeadLetter(task_id=task_id, name=name, queue=origin, reason=reason_of(headers),
                      error=error, dead_lettered_at=when, args=args, kwargs=kwargs,
                      undecodable=undecodable)
