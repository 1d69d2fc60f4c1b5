"""``/dead-letters``: inspect, replay and purge the dead-letter queues (``<queue>.XQ``).

- **Listing does not consume.** It reads through the management API's
  get-messages with ``ack_requeue_true``: RabbitMQ hands the messages out and
  puts them back, in order, in one request. (A quorum queue counts that as a
  delivery; the dead-letter queues have no delivery limit, so nothing else
  changes.) Requeued messages may come back in another order, so a listing
  reads each queue's first 10,000 messages and orders them itself, by
  dead-lettering time and task id; ``next`` (the URL of the following page)
  carries the last entry's key. ``?queue=`` and ``?reason=`` filter and
  ``?limit=`` (1 to 1000, default 100) bounds a page.
- **Replay** takes the message with that task id off the dead-letter queue
  over AMQP (``basic.get`` without ack, others are put back when the channel
  closes), publishes the original message again to its task queue (same task
  id; Cargo's and RabbitMQ's dead-letter headers removed, ``retries`` reset,
  publisher confirms), and only then acknowledges it from the dead-letter queue.
  It then announces the task as ``queued`` again, like a submission.
- **Purge** empties one queue's dead letters (``?queue=`` required).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import aiormq
import structlog
from aiohttp import web

from broker.deadletter import Reason
from broker.events import TaskEvent, TaskState, utc_now
from broker.management import ManagementClient, ManagementError
from broker.publisher import BrokerUnavailable, QueueFull
from gateway.deadletters import Cursor, DeadLetters
from gateway.errors import ApiError
from gateway.keys import (
    ANNOUNCER_KEY,
    BROKER_KEY,
    DEADLETTERS_KEY,
    HUB_KEY,
    METRICS_KEY,
    SETTINGS_KEY,
    TOPOLOGY_KEY,
)
from gateway.responses import DeadLetterPage, Purged, ReplayAccepted

log = structlog.get_logger(__name__)

routes = web.RouteTableDef()

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


async def deadletters_ctx(app: web.Application) -> AsyncIterator[None]:
    """The dead-letter service, with its management API session."""
    settings = app[SETTINGS_KEY]
    async with ManagementClient(settings.management_api) as management:
        app[DEADLETTERS_KEY] = DeadLetters(settings, app[TOPOLOGY_KEY], app[BROKER_KEY],
                                           management, app[METRICS_KEY])
        yield


def _queues(request: web.Request, required: bool) -> list[str]:
    service = request.app[DEADLETTERS_KEY]
    queue = request.query.get("queue")
    if queue is None or queue == "":
        if required:
            raise ApiError(422, "invalid_arguments", "query parameter 'queue' is required",
                           [{"loc": ["query", "queue"], "msg": "field required"}])
        return service.queues
    if queue not in service.queues:
        raise ApiError(404, "queue_not_found", f"no task queue named {queue!r}",
                       {"queues": service.queues})
    return [queue]


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(422, "invalid_arguments", f"limit must be an integer from 1 to {MAX_LIMIT}",
                       [{"loc": ["query", "limit"], "msg": f"not in 1..{MAX_LIMIT}: {raw!r}"}])
    return limit


def _after(request: web.Request) -> Cursor | None:
    raw = request.query.get("after")
    if raw is None:
        return None
    try:
        return Cursor.decode(raw)
    except ValueError:
        raise ApiError(422, "invalid_arguments", "after must be a cursor from 'next'",
                       [{"loc": ["query", "after"], "msg": f"not a cursor: {raw!r}"}]) from None


def _retry_after(request: web.Request) -> dict[str, str]:
    return {"Retry-After": str(request.app[SETTINGS_KEY].retry_after_seconds)}


@routes.get("/dead-letters")
async def list_dead_letters(request: web.Request) -> web.Response:
    queues = _queues(request, required=False)
    reason = request.query.get("reason") or None
    if reason is not None and reason not in Reason.__members__.values():
        raise ApiError(422, "invalid_arguments", f"unknown reason {reason!r}",
                       [{"loc": ["query", "reason"],
                         "msg": f"one of {', '.join(r.value for r in Reason)}"}])
    limit = _limit(request)
    try:
        page = await request.app[DEADLETTERS_KEY].page(queues, reason, limit, _after(request))
    except ManagementError as exc:
        raise ApiError(503, "broker_unavailable", f"cannot read the dead-letter queue: {exc}",
                       headers=_retry_after(request)) from None
    body = DeadLetterPage(items=page.items)
    if page.next is not None:
        query = {k: v for k, v in request.query.items() if k != "after"}
        query["after"] = page.next.encode()
        body["next"] = f"/dead-letters?{urlencode(query)}"
    return web.json_response(body)


@routes.post("/dead-letters/{task_id}/replay")
async def replay_dead_letter(request: web.Request) -> web.Response:
    task_id = request.match_info["task_id"]
    queues = _queues(request, required=False)
    retry_after = _retry_after(request)
    # The ``queued`` time is taken before republishing, as for a submission: the
    # worker may run (and finish) the replay before this handler resumes, and
    # the task store tells a late ``queued`` from a new run by this time.
    queued_at = utc_now()
    try:
        replayed = await request.app[DEADLETTERS_KEY].replay(task_id, queues)
    except QueueFull as exc:
        raise ApiError(429, "queue_full", str(exc), headers=retry_after) from None
    except (BrokerUnavailable, aiormq.exceptions.AMQPError, ConnectionError,
            TimeoutError) as exc:
        raise ApiError(503, "broker_unavailable", f"replay failed: {exc}",
                       headers=retry_after) from None
    if replayed is None:
        raise ApiError(404, "dead_letter_not_found",
                       f"no dead letter with task id {task_id!r}")
    log.info("deadletters.replayed", task_id=task_id, queue=replayed.queue)
    event = TaskEvent(task_id, replayed.name or "unknown", TaskState.QUEUED, queued_at,
                      queue=replayed.queue, retries=0)
    request.app[HUB_KEY].store.apply(event)
    request.app[ANNOUNCER_KEY].announce(event)
    return web.json_response(ReplayAccepted(task_id=task_id), status=202,
                             headers={"Location": f"/tasks/{task_id}"})


@routes.delete("/dead-letters")
async def purge_dead_letters(request: web.Request) -> web.Response:
    (queue,) = _queues(request, required=True)
    try:
        purged = await request.app[DEADLETTERS_KEY].purge(queue)
    except (BrokerUnavailable, aiormq.exceptions.AMQPError, ConnectionError,
            TimeoutError) as exc:
        raise ApiError(503, "broker_unavailable", f"purge failed: {exc}",
                       headers=_retry_after(request)) from None
    log.info("deadletters.purged", queue=queue, purged=purged)
    return web.json_response(Purged(purged=purged))
