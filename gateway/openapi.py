"""``GET /openapi.json``: the OpenAPI 3.1 document for every route of the contract.

The answers' schemas are generated from the shapes the handlers send
(``gateway.responses``), the submission body's from ``SubmitBody``.

Built per request from the live catalog (``broker.catalog``; for a client
with the token, when auth is on): besides the
generic ``POST /tasks/{name}`` (whose ``name`` lists the announced tasks), each
announced task gets a path ``/tasks/<name>`` (marked ``x-cargo-task``) whose
request body carries that task's announced arguments schema: ``kwargs`` is the
schema itself (its properties are the parameters) and ``args`` lists the
parameters named by ``x-cargo-positional``, in order.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from broker.arguments import POSITIONAL, VARARGS
from broker.catalog import CatalogEntry
from broker.deadletter import Reason
from gateway import recent_api
from gateway.auth import check_token
from gateway.errors import ApiError
from gateway.keys import CATALOG_KEY
from gateway.responses import (
    REF_TEMPLATE,
    TASK_STATE_SCHEMA,
    Accepted,
    Catalog,
    DeadLetterPage,
    Error,
    Health,
    Purged,
    Queues,
    Readiness,
    ReplayAccepted,
    RevokeAccepted,
    Task,
    TaskList,
    Workers,
    component_schemas,
    ref,
)
from gateway.tasks_api import SubmitBody, SubmitOptions

routes = web.RouteTableDef()

JSON = "application/json"
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}


def _json(description: str, shape: type) -> dict[str, Any]:
    """A response whose body is ``shape`` (``gateway.responses``)."""
    return {"description": description, "content": {JSON: {"schema": ref(shape)}}}


def _error(description: str, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": ref(Error)}},
    }
    if retry_after:
        response["headers"] = RETRY_AFTER
    return response


ACCEPTED = {
    "description": "accepted: the broker confirmed the task message (or, with an "
                   "idempotency key used before for the same request, the first "
                   "submission's task, and nothing was published again)",
    "headers": {"Location": {"schema": {"type": "string"}, "description": "status URL"},
                "Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]},
                                        "description": "present when this answers a repeated "
                                                       "idempotency key"}},
    "content": {JSON: {"schema": ref(Accepted)}},
}
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 256},
    "description": "draft-ietf-httpapi-idempotency-key-header; the same as "
                   "options.idempotency_key (both given: they must be equal). The same key "
                   "with the same request returns the first task (same task_id, nothing "
                   "published or run again), on any gateway replica once the first was "
                   "accepted; with a different request it is 422; while the first is "
                   "still unconfirmed it is 409.",
}
SUBMIT_ERRORS = {
    "400": _error("malformed JSON, or JSON refused: nested over 64 levels, NaN or Infinity, "
                  "duplicate keys, lone surrogates, integers over 4,300 digits "
                  "(malformed_json); a body that does not decompress (malformed_body)"),
    "401": _error("missing or wrong token (when auth is on)"),
    "404": _error("no live worker offers a task of that name (unknown_task)"),
    "413": _error("body too large"),
    "415": _error("not JSON"),
    "409": _error("a submission with the same idempotency key is still waiting for the "
                  "broker's confirm (idempotency_key_in_flight); retry with the same key",
                  retry_after=True),
    "422": _error("arguments that do not fit the task; an idempotency key used before for a "
                  "different request (idempotency_key_reused); header and option differ "
                  "(idempotency_key_conflict)"),
    "429": _error("the queue is at its length limit", retry_after=True),
    "503": _error("not accepted, and it will not run: the broker is unreachable or the "
                  "message could not be sent within CARGO_PUBLISH_TIMEOUT "
                  "(broker_unavailable); or a live worker consuming the task's queue does "
                  "not offer the task and would dead-letter it as poison "
                  "(task_not_on_every_worker: a deploy in progress; details name the queue "
                  "and the workers)", retry_after=True),
    "504": _error("outcome unknown (publish_outcome_unknown): the message was sent but the "
                  "broker's confirm never came (connection lost, or none within "
                  "CARGO_PUBLISH_OUTCOME_TIMEOUT); the task may run. details.task_id names "
                  "it: follow that id, or resubmit with the same idempotency key (the same "
                  "task id; a worker does not run a task id again once it succeeded)",
                  retry_after=True),
}


def _schemas(entry: CatalogEntry) -> list[dict[str, Any]]:
    return [schema.schema for schema in entry.schemas]


def _args_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``args`` of one announced schema: its positional parameters, in order."""
    properties = schema.get("properties", {})
    positional = schema.get(POSITIONAL, [])
    doc: dict[str, Any] = {"type": "array",
                           "prefixItems": [copy.deepcopy(properties[n]) for n in positional],
                           "description": "positional arguments: " + (
                               ", ".join(positional) or "none")}
    if not schema.get(VARARGS, False):
        doc["maxItems"] = len(positional)
    return doc


def task_path(entry: CatalogEntry) -> dict[str, Any]:
    """``POST /tasks/<name>`` for one announced task, its body from the announced schema."""
    schemas = _schemas(entry)
    # kwargs: the announced object (its ``required`` may be met by args instead, so not
    # required here); during a rolling deploy, what every live schema accepts.
    kwargs = [{k: v for k, v in copy.deepcopy(s).items() if k != "required"} for s in schemas]
    args = [_args_schema(s) for s in schemas]
    body = {"type": "object", "additionalProperties": False, "properties": {
        "args": args[0] if len(args) == 1 else {"allOf": args},
        "kwargs": kwargs[0] if len(kwargs) == 1 else {"allOf": kwargs},
        "options": ref(SubmitOptions)}}
    limits = entry.task.limits
    summary = entry.task.doc or f"Submit {entry.name}"
    return {"x-cargo-task": entry.name, "post": {
        "summary": summary,
        "description": f"Announced by {len(entry.workers)} live worker(s); queue "
                       f"{entry.queue!r}; time limit {limits.time_limit or 'none'} s, "
                       f"memory limit {limits.memory_limit_mb} MiB, "
                       f"{limits.max_retries} retries. The arguments schema as announced: "
                       "GET /catalog.",
        "parameters": [IDEMPOTENCY_HEADER],
        "requestBody": {"required": False, "content": {JSON: {"schema": body}}},
        "responses": {"202": ACCEPTED, **SUBMIT_ERRORS},
    }}


def build_openapi(catalog: Iterable[CatalogEntry] = ()) -> dict[str, Any]:
    entries = list(catalog)
    names = sorted(entry.name for entry in entries)
    name_schema: dict[str, Any] = {"type": "string"}
    if names:
        name_schema["enum"] = names
    submit_schema = SubmitBody.model_json_schema(ref_template=REF_TEMPLATE)
    defs = submit_schema.pop("$defs", {})
    number = {"type": "number"}
    reason = {"type": "string", "enum": [r.value for r in Reason]}
    paths: dict[str, Any] = {
        "/tasks/{name}": {"post": {
            "summary": "Submit a task",
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": name_schema,
                            "description": "a task some live worker announced (GET /catalog)"},
                           IDEMPOTENCY_HEADER],
            "requestBody": {"required": False,
                            "content": {JSON: {"schema": ref(SubmitBody)}}},
            "responses": {"202": ACCEPTED, **SUBMIT_ERRORS},
        }},
        "/distance/": {"post": {
            "summary": "Submit calculate_distance(x, y) (the original design's route)",
            "parameters": [*({"name": k, "in": "query", "required": True, "schema": number}
                             for k in ("x", "y")), IDEMPOTENCY_HEADER],
            "responses": {"202": ACCEPTED, **SUBMIT_ERRORS},
        }},
        "/memory-leak/": {"post": {
            "summary": "Submit memory_leak_task (the original design's route): it leaks until "
                       "the worker's memory guard stops it and it is dead-lettered with "
                       "reason memory_limit",
            "parameters": [IDEMPOTENCY_HEADER],
            "requestBody": {"required": False,
                            "content": {JSON: {"schema": ref(SubmitBody)}}},
            "responses": {"202": ACCEPTED, **SUBMIT_ERRORS},
        }},
        "/catalog": {"get": {
            "summary": "The tasks live workers announced, sorted by name",
            "responses": {"200": _json("the live catalog", Catalog),
                          "401": SUBMIT_ERRORS["401"]},
        }},
        "/dead-letters": {
            "get": {
                "summary": "List dead-lettered tasks (reading does not remove them)",
                "parameters": [
                    {"name": "queue", "in": "query", "required": False,
                     "schema": {"type": "string"}, "description": "a task queue"},
                    {"name": "reason", "in": "query", "required": False, "schema": reason},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                "default": 100}},
                    {"name": "after", "in": "query", "required": False,
                     "schema": {"type": "string"},
                     "description": "cursor; follow the response's next URL"}],
                "responses": {"200": _json("a page of dead letters", DeadLetterPage),
                              "401": SUBMIT_ERRORS["401"],
                              "404": _error("unknown queue (queue_not_found)"),
                              "422": _error("bad reason, limit or cursor"),
                              "503": _error("the broker is unreachable", retry_after=True)},
            },
            "delete": {
                "summary": "Purge one task queue's dead letters",
                "parameters": [{"name": "queue", "in": "query", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": _json("how many were deleted", Purged),
                              "401": SUBMIT_ERRORS["401"],
                              "404": _error("unknown queue (queue_not_found)"),
                              "422": _error("queue missing (invalid_arguments)"),
                              "503": _error("the broker is unreachable", retry_after=True)},
            },
        },
        "/dead-letters/{task_id}/replay": {"post": {
            "summary": "Run a dead-lettered task again (same id) and remove it from the "
                       "dead-letter queue",
            "parameters": [{"name": "task_id", "in": "path", "required": True,
                            "schema": {"type": "string"}},
                           {"name": "queue", "in": "query", "required": False,
                            "schema": {"type": "string"}}],
            "responses": {"202": _json("republished, confirmed by the broker",
                                       ReplayAccepted),
                          "401": SUBMIT_ERRORS["401"],
                          "404": _error("no dead letter with that task id "
                                        "(dead_letter_not_found)"),
                          "429": SUBMIT_ERRORS["429"],
                          "503": _error("not accepted, and it will not run: the broker is "
                                        "unreachable or the message could not be sent "
                                        "within CARGO_PUBLISH_TIMEOUT (broker_unavailable)",
                                        retry_after=True)},
        }},
        "/queues": {"get": {
            "summary": "Cargo's task queues: messages ready and unacknowledged, consumers, "
                       "and the depth of each queue's dead-letter queue",
            "description": "The topology's queues first, then every queue a live worker "
                           "consumes or routes an announced task to and every queue declared "
                           "as a Cargo task queue, by name. A queue that does not exist yet "
                           "shows zeros. Figures are the RabbitMQ management API's "
                           "statistics (refreshed by RabbitMQ every few seconds), read at "
                           "most once a second per gateway.",
            "responses": {"200": _json("the task queues", Queues),
                          "401": SUBMIT_ERRORS["401"],
                          "503": _error("the RabbitMQ management API is unreachable or "
                                        "failing (management_unavailable; the message and "
                                        "details.management_url name it, password masked)",
                                        retry_after=True)},
        }},
        "/workers": {"get": {
            "summary": "The live workers, from their catalog announcements",
            "description": "A worker is live while its latest announcement holds (three "
                           "CARGO_CATALOG_INTERVALs) and until it withdraws it by stopping "
                           "gracefully. Sorted by hostname.",
            "responses": {"200": _json("the live workers", Workers),
                          "401": SUBMIT_ERRORS["401"]},
        }},
        "/tasks": {"get": {
            "summary": "The recent tasks this gateway replica knows, most recently updated "
                       "first",
            "description": "From this replica's memory: the tasks it read on the events "
                           "stream (and its own submissions), the latest state of at most "
                           "CARGO_TASK_STORE_SIZE of them. Each item is the task as "
                           "GET /tasks/{task_id} returns it, plus cursor (the stream cursor "
                           "of the latest event applied to it: a WebSocket event with a "
                           "higher cursor is newer) and updated_at.",
            "parameters": [
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1,
                            "maximum": recent_api.MAX_LIMIT,
                            "default": recent_api.DEFAULT_LIMIT}},
                {"name": "state", "in": "query", "required": False,
                 "schema": TASK_STATE_SCHEMA},
                {"name": "name", "in": "query", "required": False,
                 "schema": {"type": "string"}, "description": "task name"}],
            "responses": {"200": _json("the tasks, most recently updated first", TaskList),
                          "401": SUBMIT_ERRORS["401"],
                          "422": _error("a limit that is no integer from 1 to "
                                        f"{recent_api.MAX_LIMIT}, an unknown state, or a "
                                        "parameter given twice (invalid_arguments; details "
                                        "name each)")},
        }},
        "/tasks/{task_id}": {"get": {
            "summary": "Latest known state of a task",
            "parameters": [{"name": "task_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": _json("the task", Task),
                          "401": SUBMIT_ERRORS["401"],
                          "404": _error("unknown or expired task id")},
        }, "delete": {
            "summary": "Revoke a queued or running task; it ends revoked",
            "parameters": [{"name": "task_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"202": _json("revoke broadcast to the workers, confirmed by the "
                                       "broker; the revoked event follows", RevokeAccepted),
                          "401": SUBMIT_ERRORS["401"],
                          "404": _error("unknown or expired task id (task_not_found)"),
                          "409": _error("the task already ended (task_finished)"),
                          "503": SUBMIT_ERRORS["503"]},
        }},
        "/ws": {"get": {
            "summary": "WebSocket of task events (see the API contract for frames)",
            "parameters": [
                {"name": "task_id", "in": "query", "required": False,
                 "schema": {"type": "array", "items": {"type": "string"}},
                 "style": "form", "explode": True},
                {"name": "token", "in": "query", "required": False,
                 "schema": {"type": "string"}}],
            "responses": {"101": {"description": "switching protocols"},
                          "401": SUBMIT_ERRORS["401"]},
        }},
        "/healthz": {"get": {"summary": "Liveness",
                             "responses": {"200": _json("the process serves", Health)}}},
        "/readyz": {"get": {"summary": "Readiness", "responses": {
            "200": _json("connected, topology declared, catalog and events replayed",
                         Readiness),
            "503": {**_json("not ready: the checks say what each waits for", Readiness),
                    "headers": RETRY_AFTER}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
            "200": {"description": "text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {
            "200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {}}}}}}},
        "/ui": {"get": {"summary": "The web console's page (no data: it asks for the token "
                                   "and calls this API like any client)", "responses": {
            "200": {"description": "HTML", "content": {"text/html": {"schema": {
                "type": "string"}}}}}}},
        "/ui/": {"get": {"summary": "Redirects to /ui", "responses": {
            "308": {"description": "to /ui"}}}},
        "/ui/{path}": {"get": {
            "summary": "The web console's scripts, styles and icon",
            "parameters": [{"name": "path", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the file"},
                          "304": {"description": "unchanged (If-None-Match)"},
                          "404": _error("no such file")}}},
    }
    schemas: dict[str, Any] = {**defs, "SubmitBody": submit_schema, **component_schemas()}
    for entry in sorted(entries, key=lambda e: e.name):
        paths.setdefault(f"/tasks/{entry.name}", task_path(entry))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Cargo gateway", "version": "1",
                 "description": "Submit jobs over REST, watch them over a WebSocket."},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """Open to all (``gateway.auth``), but the announced tasks are the catalog, which
    needs the token: without it (when auth is on) the document has the routes only."""
    try:
        check_token(request)
    except ApiError:
        return web.json_response(build_openapi())
    catalog = request.app[CATALOG_KEY]
    return web.json_response(build_openapi(catalog))
