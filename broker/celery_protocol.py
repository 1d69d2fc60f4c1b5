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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import kombu.compression

# CONTENT_TYPE is defined with the checks and re-exported here, where senders look for it.
from broker.celery_validation import CONTENT_TYPE as CONTENT_TYPE
from broker.celery_validation import check_body, check_headers, check_properties

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


def check_task(body: bytes, headers: Any, properties: Mapping[str, Any] | None, *,
               loads: Callable[[bytes], Any] = json.loads,
               decompress: bool = True) -> DecodedTask:
    """Validate a whole protocol v2 message; raises :class:`ProtocolError`, never anything else.

    ``properties`` are the AMQP properties (``content_type`` is required);
    ``decompress`` undoes a ``compression`` header first (kombu has already
    done it for a message a worker received); ``loads`` is the JSON decoder
    (kombu's in a worker, so the body is read exactly as Celery will read it).
    """
    try:
        check_properties(properties or {})
        checked = check_headers(headers)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None
    except Exception as exc:  # a check must never take its caller down
        raise ProtocolError(f"could not check the message: {type(exc).__name__}") from None
    args, kwargs = decode_body(body, checked.compression if decompress else None, loads)
    return DecodedTask(task_id=checked.id, name=checked.task, args=args, kwargs=kwargs,
                       retries=checked.retries or 0, headers=dict(headers))


def decode_body(body: bytes, compression: Any = None,
                loads: Callable[[bytes], Any] = json.loads) -> tuple[list[Any], dict[str, Any]]:
    """``(args, kwargs)`` of a protocol v2 body, decompressed first when ``compression``
    names how; raises :class:`ProtocolError`, never anything else."""
    try:
        if compression:
            try:
                body = kombu.compression.decompress(body, str(compression))
            except Exception as exc:  # unknown compression, or junk under it
                raise ValueError(f"body does not decompress as {compression!r}: "
                                 f"{type(exc).__name__}") from None
        args, kwargs, _ = check_body(body, loads)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None
    except Exception as exc:  # a check must never take its caller down
        raise ProtocolError(f"could not read the body: {type(exc).__name__}") from None
    return args, kwargs
