"""Celery task message protocol, version 2, JSON serialised.

Written to match ``celery.app.amqp.AMQP.as_task_v2`` field for field, so an
unmodified Celery worker executes what the gateway publishes. The gateway does
not import Celery on its hot path: building a message is a dict and one
``json.dumps``.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"
REPR_MAX = 1024


class ProtocolError(ValueError):
    """A message is not a Celery protocol v2 task message."""


def task_origin() -> str:
    """Celery's ``origin`` header for messages sent from this process (``<pid>@<host>``).

    Two system calls: a sender that publishes a lot computes it once and passes
    ``origin=`` to :func:`encode_task`.
    """
    return f"{os.getpid()}@{socket.gethostname()}"


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= REPR_MAX else text[: REPR_MAX - 3] + "..."


@dataclass(frozen=True)
class TaskMessage:
    """One task message, ready to hand to any AMQP client."""

    task_id: str
    name: str
    body: bytes
    headers: dict[str, Any]
    priority: int | None = None
    properties: dict[str, Any] = field(default_factory=dict)


def encode_task(
    task_id: str,
    name: str,
    args: list[Any] | tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    eta: datetime | None = None,
    expires: datetime | None = None,
    retries: int = 0,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    priority: int | None = None,
    origin: str | None = None,
    extra_headers: dict[str, Any] | None = None,
) -> TaskMessage:
    """Build a protocol v2 message; raises ``TypeError`` if args are not JSON-serialisable."""
    kwargs = kwargs or {}
    if not isinstance(args, list | tuple):
        raise TypeError("task args must be a list")
    if not isinstance(kwargs, dict):
        raise TypeError("task kwargs must be an object")
    for moment, label in ((eta, "eta"), (expires, "expires")):
        if moment is not None and moment.tzinfo is None:
            raise ValueError(f"{label} must be timezone-aware")
    headers: dict[str, Any] = {
        "lang": "py",
        "task": name,
        "id": task_id,
        "shadow": None,
        "eta": eta.isoformat() if eta else None,
        "expires": expires.isoformat() if expires else None,
        "group": None,
        "group_index": None,
        "retries": retries,
        "timelimit": [time_limit, soft_time_limit],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": _short_repr(list(args)),
        "kwargsrepr": _short_repr(kwargs),
        "origin": origin or task_origin(),
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    if extra_headers:
        headers.update(extra_headers)
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    body = json.dumps([list(args), kwargs, embed], separators=(",", ":"),
                      allow_nan=False).encode()
    return TaskMessage(task_id=task_id, name=name, body=body, headers=headers,
                       priority=priority)


@dataclass(frozen=True)
class DecodedTask:
    task_id: str
    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    retries: int
    headers: dict[str, Any]


def decode_task(body: bytes, headers: dict[str, Any] | None,
                content_type: str | None = CONTENT_TYPE) -> DecodedTask:
    """Parse a protocol v2 JSON message; raises :class:`ProtocolError` on anything else."""
    headers = dict(headers or {})
    if content_type not in (None, CONTENT_TYPE):
        raise ProtocolError(f"unsupported content type {content_type!r}")
    task_id, name = headers.get("id"), headers.get("task")
    if not isinstance(task_id, str) or not isinstance(name, str):
        raise ProtocolError("missing 'id' or 'task' header: not a Celery protocol v2 message")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"body is not JSON: {exc}") from None
    if (not isinstance(payload, list) or len(payload) != 3
            or not isinstance(payload[0], list) or not isinstance(payload[1], dict)):
        raise ProtocolError("body is not [args, kwargs, embed]")
    retries = headers.get("retries") or 0
    return DecodedTask(task_id=task_id, name=name, args=payload[0], kwargs=payload[1],
                       retries=int(retries), headers=headers)
