"""Dramatiq message -> Celery protocol v2 task: pure, no I/O, unit-tested on its own.

A Dramatiq message on the wire (``dramatiq.Message.encode`` with the default
JSON encoder) is one JSON object::

    {"queue_name", "actor_name", "args", "kwargs", "options", "message_id",
     "message_timestamp"}

It becomes the Celery message a Cargo client would have submitted for the
task named ``actor_name``:

- ``message_id`` is the task id (so a Dramatiq producer's id is what the
  WebSocket and ``GET /tasks/{id}`` show);
- ``options.eta`` (milliseconds since the epoch, set by
  ``send_with_options(delay=…)``) is the Celery ``eta`` and a countdown in
  whole seconds, rounded up (never early), which the publisher sends through
  Celery's native delayed delivery;
- ``options.time_limit`` (ms) is the Celery per-message hard time limit
  (``timelimit``), never above the task's own Cargo limit;
- ``options.max_age`` (ms, counted from ``message_timestamp``) is the Celery
  ``expires``: a task that starts too late is revoked, as Dramatiq's
  ``AgeLimit`` skips it;
- ``options.max_retries`` travels in the ``x-cargo-max-retries`` header: the
  worker uses it instead of the task's retry budget; ``options.retries``
  (retries already spent) is Celery's ``retries``.

What cannot run — not a Dramatiq message, no Cargo task of that name, or
Dramatiq features Cargo does not execute (pipelines, callbacks, group
completion) — raises :class:`Untranslatable`; the bridge dead-letters it as
``poison``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.celery_protocol import TaskMessage, encode_task
from broker.topology import MAX_RETRIES_HEADER, MAX_RETRY_BUDGET, dramatiq_canonical_queue_name

FIELDS = ("queue_name", "actor_name", "args", "kwargs", "options", "message_id",
          "message_timestamp")
MAX_ID_LENGTH = 255
# Dramatiq options Cargo cannot honour: the message would run without the part
# of its meaning they carry (a pipeline's next step, a callback, a group's
# completion), so it is dead-lettered instead of run halfway.
UNSUPPORTED_OPTIONS = ("pipe_target", "on_success", "on_failure", "on_retry_exhausted",
                       "group_completion_uuid", "group_completion_callbacks")


class Untranslatable(ValueError):
    """A message the bridge cannot turn into a Cargo task (dead-lettered as poison)."""


@dataclass(frozen=True)
class DramatiqMessage:
    queue_name: str
    actor_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    message_id: str
    message_timestamp: float  # milliseconds since the epoch


@dataclass(frozen=True)
class Translation:
    """A Celery task for ``queue`` (the Dramatiq queue, without ``.DQ``)."""

    queue: str
    task: TaskMessage
    countdown: float | None
    source: DramatiqMessage


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_message(body: bytes) -> DramatiqMessage:
    """Read a Dramatiq JSON message; raises :class:`Untranslatable` on anything else."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Untranslatable(f"not a Dramatiq message: body is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise Untranslatable("not a Dramatiq message: body is not a JSON object")
    missing = [name for name in FIELDS if name not in doc]
    if missing:
        raise Untranslatable(f"not a Dramatiq message: missing {', '.join(missing)}")
    checks: tuple[tuple[str, bool], ...] = (
        ("queue_name", isinstance(doc["queue_name"], str) and bool(doc["queue_name"])),
        ("actor_name", isinstance(doc["actor_name"], str) and bool(doc["actor_name"])),
        ("args", isinstance(doc["args"], list)),
        ("kwargs", isinstance(doc["kwargs"], dict)),
        ("options", isinstance(doc["options"], dict)),
        ("message_id", isinstance(doc["message_id"], str)
         and 0 < len(doc["message_id"]) <= MAX_ID_LENGTH and doc["message_id"].isprintable()),
        ("message_timestamp", _number(doc["message_timestamp"])),
    )
    bad = [name for name, ok in checks if not ok]
    if bad:
        raise Untranslatable(f"malformed Dramatiq message: bad {', '.join(bad)}")
    return DramatiqMessage(
        queue_name=doc["queue_name"], actor_name=doc["actor_name"], args=doc["args"],
        kwargs=doc["kwargs"], options=doc["options"], message_id=doc["message_id"],
        message_timestamp=float(doc["message_timestamp"]))


def _milliseconds(options: Mapping[str, Any], name: str) -> float | None:
    value = options.get(name)
    if value is None:
        return None
    if not _number(value) or value < 0:
        raise Untranslatable(f"malformed Dramatiq message: option {name} is not a "
                             f"non-negative number of milliseconds ({value!r})")
    return float(value)


def _moment(milliseconds: float) -> datetime:
    try:
        return datetime.fromtimestamp(milliseconds / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise Untranslatable(f"malformed Dramatiq message: time {milliseconds!r} ms is "
                             "out of range") from None


def translate(message: DramatiqMessage, *, queue: str, known_tasks: Container[str],
              time_limits: Mapping[str, float], now: datetime,
              origin: str | None = None) -> Translation:
    """The Celery task for ``message``, which arrived on Dramatiq queue ``queue``.

    ``time_limits`` maps a task name to its Cargo hard time limit in seconds (a
    message may ask for less, never more); ``now`` is when the bridge took it.
    """
    if message.actor_name not in known_tasks:
        raise Untranslatable(f"no Cargo task named {message.actor_name!r} "
                             "(a Dramatiq actor must have a Cargo task of the same name)")
    options = message.options
    unsupported = [name for name in UNSUPPORTED_OPTIONS if options.get(name) is not None]
    if unsupported:
        raise Untranslatable(f"uses Dramatiq options Cargo does not run: "
                             f"{', '.join(unsupported)}")
    eta_ms = _milliseconds(options, "eta")
    time_limit_ms = _milliseconds(options, "time_limit")
    max_age_ms = _milliseconds(options, "max_age")
    retries = options.get("retries", 0) or 0
    max_retries = options.get("max_retries")
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise Untranslatable(f"malformed Dramatiq message: option retries is {retries!r}")
    if max_retries is not None and (not isinstance(max_retries, int)
                                    or isinstance(max_retries, bool) or max_retries < 0):
        raise Untranslatable(f"malformed Dramatiq message: option max_retries is "
                             f"{max_retries!r}")

    eta = _moment(eta_ms) if eta_ms is not None else None
    countdown: float | None = None
    if eta is not None:
        remaining = (eta - now).total_seconds()
        if remaining > 0:
            # Delayed delivery counts whole seconds: round up, so a task never
            # starts before its eta (Dramatiq's delay is a minimum, too).
            countdown = float(math.ceil(remaining))
        else:
            eta = None  # already due: run now
    expires = (_moment(message.message_timestamp + max_age_ms)
               if max_age_ms is not None else None)
    cap = time_limits.get(message.actor_name)
    time_limit = time_limit_ms / 1000 if time_limit_ms else None
    if time_limit is not None and cap is not None:
        time_limit = min(time_limit, cap)
    extra: dict[str, Any] = {}
    if max_retries is not None:
        extra[MAX_RETRIES_HEADER] = min(max_retries, MAX_RETRY_BUDGET)
    try:
        task = encode_task(message.message_id, message.actor_name, message.args,
                           message.kwargs, eta=eta, expires=expires, retries=retries,
                           time_limit=time_limit, origin=origin, extra_headers=extra or None)
    except (TypeError, ValueError) as exc:
        raise Untranslatable(f"arguments cannot be encoded: {exc}") from None
    return Translation(queue=dramatiq_canonical_queue_name(queue), task=task,
                       countdown=countdown, source=message)
