"""REST routes for tasks: submit, the original design's two routes, and status.

A submission is answered ``202`` only after RabbitMQ confirmed the task
message; anything the broker did not confirm is a ``503`` (or ``429`` when the
queue is at its length limit) with ``Retry-After``, and nothing the client sent
can produce a 5xx.
"""

from __future__ import annotations

import functools
import json
import math
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from broker.arguments import InvalidArguments
from broker.celery_protocol import encode_task
from broker.events import TaskEvent, TaskState
from broker.publisher import BrokerUnavailable, OutcomeUnknown, QueueFull
from gateway.errors import ApiError
from gateway.idempotency import Standing, Verdict, fingerprint, key_digest
from gateway.jsonbody import JsonInputError, decode_json
from gateway.keys import (
    ANNOUNCER_KEY,
    CATALOG_KEY,
    HUB_KEY,
    IDEMPOTENCY_KEY,
    METRICS_KEY,
    ORIGIN_KEY,
    PUBLISHER_KEY,
    REVOKER_KEY,
    SETTINGS_KEY,
    TASK_IDS_KEY,
)
from gateway.responses import RevokeAccepted
from gateway.store import TaskRecord

log = structlog.get_logger(__name__)

# uuid5 namespace for task ids derived from idempotency keys.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c2a4e-4c8e-5b0e-9d57-8a3c1f0c2a90")
MAX_IDEMPOTENCY_KEY = 256
# Celery's native delayed delivery encodes the delay in 28 bits of seconds.
MAX_COUNTDOWN = 2**28 - 1

routes = web.RouteTableDef()


class SubmitOptions(BaseModel):
    # allow_inf_nan=False: NaN and infinities are not JSON and fit no delay.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    countdown: float | None = Field(default=None, ge=0, le=MAX_COUNTDOWN)
    eta: datetime | None = Field(
        default=None, description=f"RFC 3339 time with a zone, at most {MAX_COUNTDOWN} s ahead")
    expires: float | datetime | None = Field(
        default=None, description=f"seconds (> 0) or an RFC 3339 time with a zone, at most "
                                  f"{MAX_COUNTDOWN} s ahead")
    priority: int | None = Field(default=None, ge=0, le=255)
    idempotency_key: str | None = Field(default=None, min_length=1,
                                        max_length=MAX_IDEMPOTENCY_KEY)

    @field_validator("eta", "expires")
    @classmethod
    def _within_delay_bound(cls, value: float | datetime | None,
                            info: ValidationInfo) -> float | datetime | None:
        """Times the delayed delivery can honour: at most MAX_COUNTDOWN seconds ahead."""
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError(f"{info.field_name} must include a timezone (RFC 3339)")
            try:  # UTC from here on: Celery's workers convert it, and must not overflow
                value = value.astimezone(UTC)
                ahead = (value - datetime.now(UTC)).total_seconds()
            except (OverflowError, ValueError):
                raise ValueError(f"{info.field_name} is out of range") from None
        elif value is not None:
            if value <= 0:
                raise ValueError("expires must be a positive number of seconds "
                                 "or an RFC 3339 time")
            ahead = value
        else:
            return None
        if ahead > MAX_COUNTDOWN:
            raise ValueError(f"{info.field_name} is more than {MAX_COUNTDOWN} seconds "
                             f"(about 8.5 years) ahead, beyond what delayed delivery can hold")
        return value

    @model_validator(mode="after")
    def _check(self) -> SubmitOptions:
        if self.countdown is not None and self.eta is not None:
            raise ValueError("give either countdown or eta, not both")
        return self


class SubmitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    options: SubmitOptions = Field(default_factory=SubmitOptions)


async def read_json(request: web.Request) -> Any:
    """The request's JSON body (None when empty), with the contract's 413/415/400."""
    limit = request.app[SETTINGS_KEY].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "body_too_large", f"request body is larger than {limit} bytes")
    try:
        raw = await request.read()
    except web.RequestPayloadError as exc:  # e.g. Content-Encoding: gzip over bytes that are not
        raise ApiError(400, "malformed_body",
                       f"request body could not be read: {str(exc).strip()}") from None
    if not raw.strip():
        return None
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type",
                       f"send JSON with Content-Type: application/json, "
                       f"not {request.content_type!r}")
    try:
        return decode_json(raw)
    except JsonInputError as exc:
        raise ApiError(400, exc.code, f"request body is refused: {exc.message}") from None


def _pydantic_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]


def parse_body(doc: Any) -> SubmitBody:
    if doc is None:
        return SubmitBody()
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_body", "request body must be a JSON object")
    try:
        return SubmitBody.model_validate(doc)
    except ValidationError as exc:
        raise ApiError(422, "invalid_body", "request body does not fit the submission schema",
                       _pydantic_details(exc)) from None


def _task_id(app: web.Application, name: str, idempotency_key: str | None) -> str:
    if idempotency_key is not None:
        return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{name}\x00{idempotency_key}"))
    return app[TASK_IDS_KEY]()


def _idempotency_key(request: web.Request, options: SubmitOptions) -> str | None:
    """The ``Idempotency-Key`` header (a bare or quoted string) or
    ``options.idempotency_key``: the same thing, so two different values are 422."""
    header = request.headers.get("Idempotency-Key")
    if header is None:
        return options.idempotency_key
    key = header.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]  # a structured-field string, as the draft spells it
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise ApiError(422, "invalid_idempotency_key",
                       f"the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} "
                       "characters", [{"loc": ["header", "Idempotency-Key"],
                                       "msg": "invalid length"}])
    if options.idempotency_key is not None and options.idempotency_key != key:
        raise ApiError(422, "idempotency_key_conflict",
                       "the Idempotency-Key header and options.idempotency_key differ",
                       [{"loc": ["header", "Idempotency-Key"],
                         "msg": "must equal options.idempotency_key when both are given"}])
    return key


NO_OPTIONS = SubmitOptions()


async def submit(request: web.Request, name: str, args: list[Any], kwargs: dict[str, Any],
                 options: SubmitOptions = NO_OPTIONS) -> web.Response:
    app = request.app
    # What may be submitted is what live workers announced (broker.catalog);
    # the arguments are published exactly as given, once every live schema accepts them.
    entry = app[CATALOG_KEY].get(name)
    if entry is None:
        raise ApiError(404, "unknown_task", f"no live worker offers a task named {name!r}")
    try:
        entry.validate(args, kwargs)
    except InvalidArguments as exc:
        raise ApiError(422, "invalid_arguments", f"arguments do not fit task {name!r}",
                       exc.errors) from None
    if entry.missing:
        # One of them could take the message and would dead-letter it as poison.
        raise ApiError(503, "task_not_on_every_worker",
                       f"task {name!r} is not offered by every live worker consuming queue "
                       f"{entry.queue!r} (not by {', '.join(entry.missing)}); retry once "
                       "the deploy is complete", {"queue": entry.queue,
                                                  "workers_missing": list(entry.missing)},
                       headers=_retry_after(request))

    # Also the ``queued`` time, taken before publishing: a worker can start (and
    # finish) the task before the confirm arrives, and the store tells a
    # replay's ``queued`` from this one by comparing it with the previous run's
    # finish time.
    now = datetime.now(UTC)
    countdown = options.countdown
    eta = options.eta
    if eta is not None:
        countdown = max(0.0, (eta - now).total_seconds())
    elif countdown:
        eta = datetime.fromtimestamp(now.timestamp() + countdown, UTC)
    expires = options.expires
    if isinstance(expires, float | int):
        expires = datetime.fromtimestamp(now.timestamp() + float(expires), UTC)

    key = _idempotency_key(request, options)
    task_id = _task_id(app, name, key)
    queue = entry.queue
    try:
        message = encode_task(task_id, name, args, kwargs, eta=eta, expires=expires,
                              priority=options.priority, origin=app[ORIGIN_KEY])
    except (TypeError, ValueError) as exc:
        raise ApiError(422, "invalid_arguments",
                       f"arguments are not JSON-encodable: {exc}") from None

    keys = app[IDEMPOTENCY_KEY]
    digest = request_print = None
    if key is not None:
        digest = key_digest(key)
        request_print = fingerprint(name, args, kwargs, options.model_dump(
            mode="json", exclude={"idempotency_key"}))
        verdict = keys.begin(digest, request_print, task_id,
                             task_known=app[HUB_KEY].store.get(task_id) is not None)
        if verdict is Verdict.REPLAY:
            return _accepted(task_id, name, {"Idempotent-Replayed": "true"})
        if verdict is Verdict.IN_FLIGHT:
            raise ApiError(409, "idempotency_key_in_flight",
                           "a submission with this idempotency key is still waiting for the "
                           "broker's confirm; retry shortly", {"task_id": task_id},
                           headers=_retry_after(request))
        if verdict is Verdict.MISMATCH:
            raise ApiError(422, "idempotency_key_reused",
                           "this idempotency key was used for a different request",
                           [{"loc": ["header", "Idempotency-Key"],
                             "msg": "already used with another task, arguments or options"}])

    metrics = app[METRICS_KEY]
    # Until the publish says otherwise (a cancelled request too), the message may
    # have reached the queue.
    standing: Standing | None = Standing.UNKNOWN
    try:
        latency = await app[PUBLISHER_KEY].publish_task(message, queue, countdown=countdown)
        standing = Standing.ACCEPTED
    except QueueFull as exc:
        standing = None
        metrics.observe_submission(name, queue, "queue_full", 0.0)
        raise ApiError(429, "queue_full", str(exc), headers=_retry_after(request)) from None
    except BrokerUnavailable as exc:
        standing = None
        metrics.observe_submission(name, queue, "broker_unavailable", 0.0)
        raise ApiError(503, "broker_unavailable", str(exc),
                       headers=_retry_after(request)) from None
    except OutcomeUnknown as exc:
        metrics.observe_submission(name, queue, "outcome_unknown", 0.0)
        raise outcome_unknown(request, task_id, exc) from None
    finally:
        if digest is not None:
            keys.settle(digest, standing)
    metrics.observe_submission(name, queue, "accepted", latency)

    event = TaskEvent(task_id, name, TaskState.QUEUED, now, queue=queue, retries=0,
                      idempotency_key=digest, fingerprint=request_print)
    app[HUB_KEY].store.apply(event)
    app[ANNOUNCER_KEY].announce(event)
    return _accepted(task_id, name)


def _accepted(task_id: str, name: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=accepted_body(task_id, name), status=202,
                        content_type="application/json",
                        headers={"Location": f"/tasks/{task_id}", **(headers or {})})


def outcome_unknown(request: web.Request, task_id: str, exc: OutcomeUnknown) -> ApiError:
    """The message was sent but its confirm never came: it may be queued. Not a 503
    (which promises the task will not run): a 504 naming the task id, so the client
    follows that id instead of submitting a second task (README, "When the broker
    does not answer")."""
    return ApiError(504, "publish_outcome_unknown",
                    f"{exc}; the task may run: watch task {task_id} or resubmit with the "
                    "same Idempotency-Key", {"task_id": task_id},
                    headers=_retry_after(request))


def _retry_after(request: web.Request) -> dict[str, str]:
    return {"Retry-After": str(request.app[SETTINGS_KEY].retry_after_seconds)}


@functools.lru_cache(maxsize=1024)
def _json_string(text: str) -> str:
    return json.dumps(text)


def accepted_body(task_id: str, name: str) -> bytes:
    """The 202 document, :class:`gateway.responses.Accepted`, formatted directly: it is
    on every submission's path. Task ids are UUIDs (nothing to escape); the task name
    is JSON-escaped once per name. A unit test holds it to ``Accepted`` and its schema.
    """
    # bench.submit: part of 818,801 -> 770,633 instructions per submission (RESULTS.md
    # "What changed, and what each change bought"); timeit: 0.17 us against 2.4 us for
    # json.dumps(Accepted(...)).encode().
    return (f'{{"task_id":"{task_id}","name":{_json_string(name)},"state":"queued",'
            f'"status_url":"/tasks/{task_id}","stream_url":"/ws?task_id={task_id}"}}').encode()


@routes.post("/tasks/{name}")
async def submit_task(request: web.Request) -> web.Response:
    body = parse_body(await read_json(request))
    return await submit(request, request.match_info["name"], body.args, body.kwargs,
                        body.options)


# Integers in a query string are passed on as integers (as the same number in a JSON
# body would be: arguments are published as given), up to where floats stay exact.
MAX_EXACT_INTEGER = 2**53
_INTEGER = re.compile(r"-?[0-9]{1,16}")


def _query_number(request: web.Request, key: str) -> float:
    raw = request.query.get(key)
    if raw is None:
        raise ApiError(422, "invalid_arguments", f"query parameter {key!r} is required",
                       [{"loc": ["query", key], "msg": "field required"}])
    if _INTEGER.fullmatch(raw) and abs(number := int(raw)) <= MAX_EXACT_INTEGER:
        return number
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ApiError(422, "invalid_arguments", f"query parameter {key!r} must be a number",
                       [{"loc": ["query", key], "msg": f"not a finite number: {raw!r}"}])
    return value


@routes.post("/distance/")
async def distance(request: web.Request) -> web.Response:
    """The original design's route: ``calculate_distance(x, y)``."""
    x, y = _query_number(request, "x"), _query_number(request, "y")
    return await submit(request, "calculate_distance", [x, y], {})


@routes.post("/memory-leak/")
async def memory_leak(request: web.Request) -> web.Response:
    """The original design's route: ``memory_leak_task`` (404 until a worker offers it)."""
    body = parse_body(await read_json(request))
    return await submit(request, "memory_leak_task", body.args, body.kwargs, body.options)


def _known_task(request: web.Request) -> TaskRecord:
    task_id = request.match_info["task_id"]
    record = request.app[HUB_KEY].store.get(task_id)
    if record is None:
        raise ApiError(404, "task_not_found", f"no task with id {task_id!r} (unknown or expired)")
    return record


@routes.get("/tasks/{task_id}")
async def task_status(request: web.Request) -> web.Response:
    return web.json_response(_known_task(request).to_json())


@routes.delete("/tasks/{task_id}")
async def revoke_task(request: web.Request) -> web.Response:
    """Revoke a queued or running task (``gateway.revoker``); it ends ``revoked``."""
    record = _known_task(request)
    if record.state.terminal:
        raise ApiError(409, "task_finished",
                       f"task {record.task_id!r} already ended {record.state.value}; "
                       "nothing to revoke")
    try:
        await request.app[REVOKER_KEY].revoke(record.task_id)
    except BrokerUnavailable as exc:
        raise ApiError(503, "broker_unavailable", str(exc),
                       headers=_retry_after(request)) from None
    log.info("task.revoke_requested", task_id=record.task_id, state=record.state.value)
    return web.json_response(RevokeAccepted(task_id=record.task_id, state=record.state.value),
                             status=202)
