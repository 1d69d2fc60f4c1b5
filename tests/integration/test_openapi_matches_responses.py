"""No drift between the OpenAPI document and what the gateway sends.

Each answer a real gateway gives (successes and errors) is validated against
the schema its own ``/openapi.json`` documents for that route and status; the
schemas are exact (``additionalProperties: false``), so a key sent but not
documented fails too. Together the two tests exercise every route whose
answers the document gives as JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest
from jsonschema import Draft202012Validator

from broker.celery_protocol import encode_task
from broker.deadletter import Reason, dead_letter_headers
from broker.settings import Settings
from broker.topology import dead_letter_queue_name
from tests.support.gateway import Gateway, running_gateway
from tests.support.processes import Proc
from tests.support.rabbit import private_vhost

pytestmark = pytest.mark.integration

JSON = "application/json"
# (method, documented path) each test exercises; together, every JSON route.
TASK_ROUTES = {
    ("post", "/tasks/{name}"), ("post", "/distance/"), ("post", "/memory-leak/"),
    ("get", "/tasks/{task_id}"), ("delete", "/tasks/{task_id}"), ("get", "/tasks"),
    ("get", "/catalog"), ("get", "/queues"), ("get", "/workers"), ("get", "/healthz"),
    ("get", "/readyz"), ("get", "/openapi.json"), ("get", "/ui/{path}"),
}
DEAD_LETTER_ROUTES = {
    ("get", "/dead-letters"), ("post", "/dead-letters/{task_id}/replay"),
    ("delete", "/dead-letters"), ("get", "/ws"),
}
TOKEN = "openapi-test-token"


class Contract:
    """The gateway's document, and the (method, path) pairs whose answers fit it."""

    def __init__(self, gw: Gateway, document: dict[str, Any],
                 headers: dict[str, str] | None = None) -> None:
        self.gw = gw
        self.document = document
        self.headers = headers or {}
        self.checked: set[tuple[str, str]] = set()

    async def call(self, method: str, path: str, url: str, status: int,
                   **request: Any) -> Any:
        """``method url`` (``path`` is the route as documented), expecting ``status``;
        its body must fit the schema documented for that status."""
        headers = {**self.headers, **request.pop("headers", {})}
        async with self.gw.http.request(method, f"{self.gw.url}{url}", headers=headers,
                                        **request) as resp:
            body = await resp.json() if resp.content_type == JSON else None
            assert resp.status == status, body
            content_type = resp.content_type
        documented = self.document["paths"][path][method]["responses"][str(status)]
        if content_type == JSON:
            schema = documented["content"][JSON]["schema"]
            # Refs (#/components/...) resolve against the document itself.
            Draft202012Validator({**schema, "components": self.document["components"]}
                                 ).validate(body)
        else:
            assert JSON not in documented.get("content", {}), (method, path, status)
        self.checked.add((method, path))
        return body


async def contract(gw: Gateway, headers: dict[str, str] | None = None) -> Contract:
    async with gw.http.get(f"{gw.url}/openapi.json", headers=headers) as resp:
        document = await resp.json()
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    return Contract(gw, document, headers)


def json_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    """The routes (not the per-task copies) with a JSON answer documented."""
    return {(method, path) for path, ops in document["paths"].items()
            if "x-cargo-task" not in ops for method, op in ops.items()
            if any(JSON in answer.get("content", {}) for answer in op["responses"].values())}


async def test_every_task_route_answers_what_the_openapi_document_says(
        rabbitmq: Settings, worker: Proc) -> None:
    async with running_gateway(rabbitmq) as gw:
        api = await contract(gw)
        assert json_routes(api.document) == TASK_ROUTES | DEAD_LETTER_ROUTES

        ran = await api.call("post", "/distance/", "/distance/?x=3&y=4", 202)
        await gw.wait_state(ran["task_id"], {"succeeded"})
        await api.call("get", "/tasks/{task_id}", f"/tasks/{ran['task_id']}", 200)
        later = await api.call("post", "/tasks/{name}", "/tasks/sleep", 202,
                               json={"kwargs": {"seconds": 60, "steps": 60}})
        await gw.wait_state(later["task_id"], {"progress"})
        await api.call("get", "/tasks/{task_id}", f"/tasks/{later['task_id']}", 200)
        await api.call("delete", "/tasks/{task_id}", f"/tasks/{later['task_id']}", 202)
        await gw.wait_state(later["task_id"], {"revoked"})
        await api.call("get", "/tasks/{task_id}", f"/tasks/{later['task_id']}", 200)
        await api.call("delete", "/tasks/{task_id}", f"/tasks/{later['task_id']}", 409)
        listed = await api.call("get", "/tasks", "/tasks", 200)
        assert {ran["task_id"], later["task_id"]} <= {t["task_id"] for t in listed["items"]}
        workers = await api.call("get", "/workers", "/workers", 200)
        assert workers["workers"]
        await api.call("get", "/catalog", "/catalog", 200)
        await api.call("get", "/queues", "/queues", 200)
        await api.call("get", "/healthz", "/healthz", 200)
        await api.call("get", "/readyz", "/readyz", 200)
        await api.call("get", "/openapi.json", "/openapi.json", 200)
        await api.call("get", "/ui/{path}", "/ui/no-such-file.js", 404)

        # Errors, each in the contract's shape.
        await api.call("post", "/tasks/{name}", "/tasks/no_such_task", 404, json={})
        await api.call("post", "/tasks/{name}", "/tasks/calculate_distance", 422,
                       json={"args": ["three"]})
        await api.call("post", "/tasks/{name}", "/tasks/calculate_distance", 400,
                       data=b'{"args": [1,', headers={"Content-Type": JSON})
        await api.call("post", "/tasks/{name}", "/tasks/calculate_distance", 415,
                       data=b"x=1", headers={"Content-Type": "text/plain"})
        await api.call("post", "/memory-leak/", "/memory-leak/", 422, json={"bogus": 1})
        await api.call("get", "/tasks/{task_id}", f"/tasks/{uuid.uuid4()}", 404)
        await api.call("get", "/tasks", "/tasks?limit=0", 422)
    assert api.checked == TASK_ROUTES


async def put_dead_letter(settings: Settings, task_id: str) -> None:
    """A task message in the dead-letter queue, as a worker leaves one there."""
    message = encode_task(task_id, "calculate_distance", [3, 4])
    headers = dead_letter_headers(message.headers, reason=Reason.FAILED,
                                  queue=settings.task_queue,
                                  error={"type": "ValueError", "message": "boom"})
    connection = await aio_pika.connect(settings.rabbitmq_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(message.body, headers=headers, content_type=JSON,
                             content_encoding="utf-8"),
            routing_key=dead_letter_queue_name(settings.task_queue))


@pytest.fixture
def vhost(rabbitmq: Settings) -> Iterator[Settings]:
    """A vhost of the test's own: its dead letters are only what the test put there."""
    with private_vhost("cargo-test-openapi") as settings:
        yield settings


async def test_every_dead_letter_route_and_the_token_check_answer_what_the_document_says(
        vhost: Settings) -> None:
    settings = vhost.model_copy(update={"auth_token": TOKEN})
    async with running_gateway(settings) as gw:
        api = await contract(gw, {"Authorization": f"Bearer {TOKEN}"})
        no_token = {"Authorization": "Bearer wrong"}
        await api.call("get", "/ws", "/ws", 401, headers=no_token)
        await api.call("get", "/dead-letters", "/dead-letters", 401, headers=no_token)
        replayed, kept = str(uuid.uuid4()), str(uuid.uuid4())
        for task_id in (replayed, kept):
            await put_dead_letter(settings, task_id)
        queue = settings.task_queue
        page = await api.call("get", "/dead-letters", "/dead-letters?limit=1", 200)
        assert len(page["items"]) == 1
        assert "next" in page
        await api.call("get", "/dead-letters", page["next"], 200)
        await api.call("get", "/dead-letters", "/dead-letters?reason=nonsense", 422)
        await api.call("get", "/dead-letters", "/dead-letters?queue=nope", 404)
        await api.call("post", "/dead-letters/{task_id}/replay",
                       f"/dead-letters/{replayed}/replay", 202)
        await api.call("post", "/dead-letters/{task_id}/replay",
                       f"/dead-letters/{replayed}/replay", 404)
        purged = await api.call("delete", "/dead-letters", f"/dead-letters?queue={queue}",
                                200)
        assert purged == {"purged": 1}
        await api.call("delete", "/dead-letters", "/dead-letters", 422)
    assert api.checked == DEAD_LETTER_ROUTES
