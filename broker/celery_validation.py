"""Checking a Celery protocol v2 message whole, before anything else reads it.

A worker that hands Celery a message with the wrong types in it (``retries:
"abc"``, ``timelimit: ["x", "y"]``, an unparseable ``eta``, a body nested
100,000 deep, a ``compression`` header over junk) does not get a failed task:
Celery's consumer raises in the worker's main process and the worker stops
("Unrecoverable error"), then the next one that receives the redelivery.
So every part Celery or Cargo reads — properties, every header Celery knows,
the body — is validated here first, with pydantic in strict mode (a string is
not an int, a bool is not a number), and anything else is a
:class:`~broker.celery_protocol.ProtocolError` naming the part: the worker
dead-letters the message as ``poison`` and keeps serving.

Headers Celery does not know are let through (other producers add their own);
Celery only copies them into the task's request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from dateutil.parser import isoparse
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

CONTENT_TYPE = "application/json"
# kombu decodes a JSON body as UTF-8 whatever the property says; anything else
# declared is a producer that meant something Cargo does not speak.
CONTENT_ENCODINGS = frozenset({"utf-8", "utf8"})
# Deepest nesting of lists/objects accepted in a body. The worker pickles the
# arguments to its pool process and repr()s them in logs, both recursive: a body
# JSON can still parse (close to the interpreter's recursion limit) would raise
# RecursionError in the worker's main process.
MAX_NESTING = 100
MAX_ID_LENGTH = 255
MAX_RETRIES = 1_000_000
# Python refuses int <-> str conversions past 4300 digits (ValueError); a JSON
# body holding one cannot be parsed, and is poison like any other bad JSON.

NonNegativeInt = Annotated[int, Field(ge=0)]
TaskId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]


def _moment(value: str | datetime | None) -> str | datetime | None:
    """Celery parses ``eta``/``expires`` with dateutil's isoparse and converts
    them to a timestamp; both must work here, or Celery fails in its consumer."""
    if not value:
        return value
    try:
        moment = value if isinstance(value, datetime) else isoparse(value)
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        # Celery moves it to the worker's zone and UTC before taking a timestamp.
        aware.astimezone().timestamp()
        aware.astimezone(UTC).timestamp()
    except (ValueError, TypeError, OverflowError, OSError) as exc:
        raise ValueError(f"not an ISO 8601 date and time Celery can use: {exc}") from None
    return value


def _limit(value: float | None) -> float | None:
    if value is not None and (not math.isfinite(value) or value < 0):
        raise ValueError("a time limit is a finite number of seconds >= 0, or null")
    return value


Moment = Annotated[str | datetime | None, AfterValidator(_moment)]
TimeLimit = Annotated[float | None, AfterValidator(_limit)]


class TaskHeaders(BaseModel):
    """The headers of a protocol v2 message (``celery.app.amqp.as_task_v2``)."""

    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=True)

    id: TaskId
    task: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]
    lang: str | None = None
    shadow: str | None = None
    eta: Moment = None
    expires: Moment = None
    group: str | None = None
    group_index: NonNegativeInt | None = None
    retries: Annotated[int, Field(ge=0, le=MAX_RETRIES)] | None = 0
    timelimit: Annotated[list[TimeLimit], Field(min_length=2, max_length=2)] | None = None
    root_id: str | None = None
    parent_id: str | None = None
    argsrepr: str | None = None
    kwargsrepr: str | None = None
    origin: str | None = None
    ignore_result: bool | None = None
    replaced_task_nesting: NonNegativeInt | None = None
    stamped_headers: list[str] | None = None
    stamps: dict[str, Any] | None = None
    meth: str | None = None
    compression: str | None = None
    # broker.topology.MAX_RETRIES_HEADER (a literal here for the type checker;
    # a unit test holds them equal).
    max_retries: Annotated[int, Field(ge=0, le=MAX_RETRIES)] | None = Field(
        default=None, alias="x-cargo-max-retries")


class TaskProperties(BaseModel):
    """The AMQP properties Celery reads."""

    model_config = ConfigDict(strict=True, extra="ignore")

    content_type: str
    content_encoding: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    priority: Annotated[int, Field(ge=0, le=255)] | None = None


Signatures = list[dict[str, Any]] | None


class Embed(BaseModel):
    """The third element of the body: what runs after the task (Celery canvas)."""

    model_config = ConfigDict(strict=True, extra="allow")

    callbacks: Signatures = None
    errbacks: Signatures = None
    chain: Signatures = None
    chord: dict[str, Any] | None = None


def _problem(error: ValidationError, part: str) -> str:
    """One line naming each bad field and why (the values are left out: they may be huge)."""
    issues = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in item["loc"]) or part
        issues.append(f"{where}: {item['msg']}")
    return f"bad {part}: " + "; ".join(issues[:5])


def _nesting(value: Any) -> int:
    """How deep lists/objects nest in ``value`` (iterative: it must not recurse itself)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            return deepest
        children = item.values() if isinstance(item, Mapping) else item
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, list | tuple | Mapping))
    return deepest


def check_properties(properties: Mapping[str, Any]) -> TaskProperties:
    """Raises ValueError naming the problem."""
    try:
        checked = TaskProperties.model_validate(dict(properties))
    except ValidationError as exc:
        raise ValueError(_problem(exc, "properties")) from None
    if checked.content_type != CONTENT_TYPE:
        raise ValueError(f"unsupported content type {checked.content_type!r}")
    encoding = checked.content_encoding
    if encoding is not None and encoding.lower() not in CONTENT_ENCODINGS:
        raise ValueError(f"unsupported content encoding {encoding!r}")
    return checked


def check_headers(headers: Any) -> TaskHeaders:
    """Raises ValueError naming the problem."""
    if not isinstance(headers, Mapping) or not all(isinstance(k, str) for k in headers):
        raise ValueError("headers are not a table of named values")
    try:
        return TaskHeaders.model_validate(dict(headers))
    except ValidationError as exc:
        raise ValueError(_problem(exc, "headers")) from None


def check_body(body: bytes, loads: Callable[[bytes], Any] = json.loads,
               ) -> tuple[list[Any], dict[str, Any], Embed]:
    """``(args, kwargs, embed)`` of a protocol v2 JSON body; raises ValueError."""
    try:
        payload = loads(body)
    except RecursionError:
        raise ValueError("body is not JSON: nested too deep to parse") from None
    except Exception as exc:  # any decoder's error: bad UTF-8, bad JSON, a 5000-digit int
        raise ValueError(f"body is not JSON: {_short(exc)}") from None
    if (not isinstance(payload, list) or len(payload) != 3
            or not isinstance(payload[0], list) or not isinstance(payload[1], dict)):
        raise ValueError("body is not [args, kwargs, embed]")
    # A body with fewer brackets than the limit cannot nest past it (a cheap
    # count spares the walk for nearly every message).
    brackets = body.count(b"[") + body.count(b"{") if isinstance(body, bytes) else MAX_NESTING + 1
    if brackets > MAX_NESTING and _nesting(payload) > MAX_NESTING:
        raise ValueError(f"body nests lists/objects deeper than {MAX_NESTING}")
    if payload[2] is None:
        embed = Embed()
    elif isinstance(payload[2], dict):
        try:
            embed = Embed.model_validate(payload[2])
        except ValidationError as exc:
            raise ValueError(_problem(exc, "embed")) from None
    else:
        raise ValueError("body is not [args, kwargs, embed]: embed is not an object")
    return payload[0], payload[1], embed


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[: limit - 3] + "..."
