"""Gateways learn what they may accept from the workers' announcements on the real
broker (``cargo.catalog.stream``), not from task code: real RabbitMQ, real aiohttp
gateways, announcements published exactly as a worker publishes them
(``tests.support.catalog``), for tasks that exist nowhere in this repository.

One private vhost for the module; each test announces task names of its own.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import aiohttp
import pytest
from jsonschema import Draft202012Validator

from bench.proxy import BrokerProxy
from broker.declare import declare_topology
from broker.settings import Settings
from broker.topology import build_topology
from tests.support.bridge import start_bridge
from tests.support.catalog import (
    announce,
    announce_builtin_tasks,
    announcement,
    publish_catalog_message,
    task_with_schema,
    withdraw,
)
from tests.support.eventually import eventually
from tests.support.gateway import Gateway, running_gateway
from tests.support.metrics import free_port, parse, total
from tests.support.processes import Proc, process_env
from tests.support.rabbit import private_vhost

pytestmark = pytest.mark.integration

# acme.resize(width: int >= 1, height: int >= 1, *, mode: "fit" | "fill" = "fit")
RESIZE = {"type": "object", "title": "acme.resize",
          "properties": {"width": {"type": "integer", "minimum": 1},
                         "height": {"type": "integer", "minimum": 1},
                         "mode": {"enum": ["fit", "fill"], "default": "fit"}},
          "required": ["width", "height"], "additionalProperties": False,
          "x-cargo-positional": ["width", "height"]}
NUMBER_X = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"],
            "additionalProperties": False, "x-cargo-positional": ["x"]}
SMALL_X = {"type": "object", "properties": {"x": {"type": "number", "maximum": 10}},
           "required": ["x"], "additionalProperties": False, "x-cargo-positional": ["x"]}


@pytest.fixture(scope="module")
def vhost(rabbitmq: Settings) -> Iterator[Settings]:
    with private_vhost("cargo-test-catalog") as settings:
        yield settings


def unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


async def post(gw: Gateway, name: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    async with gw.http.post(f"{gw.url}/tasks/{name}", json=body or {}) as resp:
        return resp.status, await resp.json()


async def catalog_of(gw: Gateway) -> dict[str, dict[str, Any]]:
    async with gw.http.get(f"{gw.url}/catalog") as resp:
        assert resp.status == 200
        doc = await resp.json()
    names = [item["name"] for item in doc["items"]]
    assert names == sorted(names)
    return {item["name"]: item for item in doc["items"]}


async def test_a_gateway_started_after_an_announcement_accepts_the_task_at_once(
        vhost: Settings) -> None:
    name = unique("acme.resize")
    await announce(vhost, [task_with_schema(name, RESIZE, doc="Resize an image")],
                   worker=unique("worker"))
    async with running_gateway(vhost, builtin_catalog=False) as gw:
        accepted = await post(gw, name, {"args": [640, 480], "kwargs": {"mode": "fill"}})
        unknown = await post(gw, "acme.nothing-offers-this", {"args": []})
        catalog = await catalog_of(gw)
    assert accepted[0] == 202, accepted
    assert accepted[1]["name"] == name
    assert unknown == (404, {"error": {
        "code": "unknown_task",
        "message": "no live worker offers a task named 'acme.nothing-offers-this'"}})
    assert catalog[name] == {"name": name, "queue": "cargo", "schema": RESIZE,
                             "doc": "Resize an image", "workers": 1,
                             "limits": {"time_limit": 600.0, "memory_limit_mb": 256,
                                        "max_retries": 3}}


async def test_arguments_that_do_not_fit_an_announced_schema_are_422_with_details(
        vhost: Settings) -> None:
    name = unique("acme.resize")
    await announce(vhost, [task_with_schema(name, RESIZE)], worker=unique("worker"))
    async with running_gateway(vhost, builtin_catalog=False) as gw:
        status, doc = await post(gw, name, {"args": [0, "tall"], "kwargs": {"mode": "zoom",
                                                                          "dpi": 300}})
    assert status == 422, doc
    assert doc["error"]["code"] == "invalid_arguments"
    assert sorted(doc["error"]["details"], key=str) == sorted([
        {"loc": ["kwargs", "dpi"], "msg": "unexpected keyword argument"},
        {"loc": ["args", 0], "msg": "Input should be greater than or equal to 1"},
        {"loc": ["args", 1], "msg": "Input should be a valid integer"},
        {"loc": ["kwargs", "mode"], "msg": "Input should be 'fit' or 'fill'"},
    ], key=str)


async def test_bad_announcements_on_the_stream_change_nothing_and_are_counted(
        vhost: Settings) -> None:
    name = unique("acme.resize")
    await announce(vhost, [task_with_schema(name, RESIZE)], worker=unique("worker"))
    async with running_gateway(vhost, builtin_catalog=False) as gw:
        before = await catalog_of(gw)
        poisoned = json.loads(announcement(vhost, [task_with_schema(name, NUMBER_X)]).encode())
        poisoned["tasks"][0]["schema"] = {"type": "object", "properties": {
            "x": {"$ref": "https://attacker.example/schema.json"}}}
        bad = [b"\x00\xffnot json at all", b'{"type": "cargo.catalog", "tasks": 7}',
               b"[" * 50_000,
               announcement(vhost, [task_with_schema(name, NUMBER_X)],
                            vhost="someone-elses-vhost").encode(),
               json.dumps(poisoned).encode()]
        for body in bad:
            await publish_catalog_message(vhost, body)
        # A valid announcement after them: once it is read, so were they (one stream).
        sentinel = unique("acme.sentinel")
        await announce(vhost, [task_with_schema(sentinel, NUMBER_X)], worker=unique("worker"))

        async def sentinel_known() -> bool:
            return sentinel in await catalog_of(gw)

        await eventually(sentinel_known, 60, "the announcement after the bad ones")
        after = await catalog_of(gw)
        still = await post(gw, name, {"args": [2, 2]})
        async with gw.http.get(f"{gw.url}/metrics") as resp:
            samples = parse(await resp.text())
    assert {k: v for k, v in after.items() if k != sentinel} == before
    assert still[0] == 202, still
    rejected = "cargo_catalog_announcements_rejected_total"
    assert total(samples, rejected, reason="malformed") == 3
    assert total(samples, rejected, reason="foreign_vhost") == 1
    assert total(samples, rejected, reason="invalid_schema") == 1
    assert total(samples, "cargo_catalog_tasks") == len(after)


async def test_a_restarted_gateway_relearns_the_catalog(vhost: Settings) -> None:
    name = unique("acme.resize")
    await announce(vhost, [task_with_schema(name, RESIZE)], worker=unique("worker"))
    async with running_gateway(vhost, builtin_catalog=False) as gw:
        first = await post(gw, name, {"args": [1, 1]})
    async with running_gateway(vhost, builtin_catalog=False) as gw:
        again = await post(gw, name, {"args": [1, 1]})
    assert (first[0], again[0]) == (202, 202), (first, again)


async def test_a_withdrawn_task_is_404_unknown_task(vhost: Settings) -> None:
    name, worker = unique("acme.resize"), unique("worker")
    await announce(vhost, [task_with_schema(name, RESIZE)], worker=worker)
    async with running_gateway(vhost, builtin_catalog=False) as gw:
        assert (await post(gw, name, {"args": [1, 1]}))[0] == 202
        await withdraw(vhost, worker=worker)

        async def gone() -> bool:
            return (await post(gw, name, {"args": [1, 1]}))[0] == 404

        await eventually(gone, 60, "the withdrawal")
        assert name not in await catalog_of(gw)


async def test_a_task_whose_announcement_expired_is_404_unknown_task(vhost: Settings) -> None:
    name = unique("acme.resize")
    # Announced a moment ago for one second: expired by the time anything reads it.
    await announce(vhost, [task_with_schema(name, RESIZE)], worker=unique("worker"), ttl=1,
                   announced_at=datetime.now(UTC) - timedelta(seconds=2))
    async with running_gateway(vhost, builtin_catalog=False) as gw:
        status, doc = await post(gw, name, {"args": [1, 1]})
        listed = await catalog_of(gw)
    assert (status, doc["error"]["code"]) == (404, "unknown_task")
    assert name not in listed


async def test_a_task_announced_for_a_second_expires_while_the_gateway_runs(
        vhost: Settings) -> None:
    name = unique("acme.resize")
    async with running_gateway(vhost, builtin_catalog=False) as gw:
        await announce(vhost, [task_with_schema(name, RESIZE)], worker=unique("worker"), ttl=1)

        async def gone() -> bool:
            return (await post(gw, name, {"args": [1, 1]}))[0] == 404

        await eventually(gone, 60, "the expiry")


async def test_a_rolling_deploy_accepts_what_both_schemas_accept_until_one_withdraws(
        vhost: Settings) -> None:
    name = unique("acme.scale")
    old, new = unique("worker-old"), unique("worker-new")
    started = datetime.now(UTC)
    await announce(vhost, [task_with_schema(name, NUMBER_X)], worker=old,
                   started_at=started - timedelta(minutes=5))
    await announce(vhost, [task_with_schema(name, SMALL_X, queue="cargo")], worker=new,
                   started_at=started)
    async with running_gateway(vhost, builtin_catalog=False) as gw:
        listed = (await catalog_of(gw))[name]
        both = await post(gw, name, {"args": [5]})
        only_old = await post(gw, name, {"args": [50]})
        await withdraw(vhost, worker=new, started_at=started)

        async def old_rule_alone() -> bool:
            return (await post(gw, name, {"args": [50]}))[0] == 202

        await eventually(old_rule_alone, 60, "the old worker's rule alone")
        after = (await catalog_of(gw))[name]
    assert listed["workers"] == 2
    assert listed["schema"] == {"allOf": [NUMBER_X, SMALL_X]}
    assert both[0] == 202, both
    assert only_old[0] == 422, only_old
    assert only_old[1]["error"]["details"] == [
        {"loc": ["args", 0], "msg": "Input should be less than or equal to 10"}]
    assert (after["workers"], after["schema"]) == (1, NUMBER_X)


async def test_openapi_documents_each_announced_tasks_request_body(vhost: Settings) -> None:
    name = unique("acme.resize")
    await announce(vhost, [task_with_schema(name, RESIZE, doc="Resize an image")],
                   worker=unique("worker"))
    async with running_gateway(vhost, builtin_catalog=False) as gw:
        async with gw.http.get(f"{gw.url}/openapi.json") as resp:
            assert resp.status == 200
            doc = await resp.json()
    path = doc["paths"][f"/tasks/{name}"]
    assert path["x-cargo-task"] == name
    assert path["post"]["summary"] == "Resize an image"
    body = path["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["kwargs"]["properties"] == RESIZE["properties"]
    assert [item["type"] for item in body["properties"]["args"]["prefixItems"]] == [
        "integer", "integer"]
    assert body["properties"]["args"]["maxItems"] == 2
    # Both are JSON Schemas a client's validator can use on its own request.
    args, kwargs = (Draft202012Validator(body["properties"][k]) for k in ("args", "kwargs"))
    for validator in (args, kwargs):
        Draft202012Validator.check_schema(validator.schema)
    assert args.is_valid([640, 480])
    assert kwargs.is_valid({"mode": "fill"})
    assert not args.is_valid([640, 480, 1])
    assert not args.is_valid(["wide"])
    assert not kwargs.is_valid({"mode": "zoom"})
    assert not kwargs.is_valid({"dpi": 300})
    assert name in doc["paths"]["/tasks/{name}"]["post"]["parameters"][0]["schema"]["enum"]
    assert "/catalog" in doc["paths"]


async def declare_task_queue(settings: Settings) -> str:
    """A new task queue, declared as the worker consuming it declares it."""
    queue = unique("reports").replace(".", "-")
    connection = await aio_pika.connect(settings.rabbitmq_url)
    async with connection:
        await declare_topology(await connection.channel(),
                               build_topology(settings, task_queues=(queue,)))
    return queue


async def test_a_task_on_a_queue_of_its_own_gets_429_when_that_queue_is_full(
        vhost: Settings) -> None:
    # A default queue of its own too: RabbitMQ keeps each queue's first length limit.
    settings = vhost.model_copy(update={"queue_max_length": 2,
                                        "task_queue": unique("default").replace(".", "-")})
    queue = await declare_task_queue(settings)
    name = unique("acme.report")
    await announce(settings, [task_with_schema(name, NUMBER_X, queue=queue)],
                   worker=unique("worker"))
    # Quorum queues apply the limit approximately (a few more may get in): submit
    # until refused, then every 202 is in the queue and nothing else is.
    answers = []
    async with running_gateway(settings, builtin_catalog=False) as gw:
        for n in range(50):
            answers.append(await post(gw, name, {"args": [n]}))
            if answers[-1][0] != 202:
                break
    accepted = [doc["task_id"] for status, doc in answers if status == 202]
    assert len(accepted) >= 2
    assert answers[-1][0] == 429, answers[-1]
    assert answers[-1][1]["error"]["code"] == "queue_full"
    connection = await aio_pika.connect(settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        held = await channel.declare_queue(queue, passive=True)
        ids = []
        while (message := await held.get(no_ack=True, fail=False)) is not None:
            ids.append(message.headers["id"])
        await held.delete(if_unused=False, if_empty=False)
    assert ids == accepted


async def test_the_bridge_publishes_a_bridged_actor_to_its_tasks_own_queue(
        vhost: Settings) -> None:
    queue = await declare_task_queue(vhost)
    name = unique("acme.report")
    await announce(vhost, [task_with_schema(name, NUMBER_X, queue=queue, time_limit=30)],
                   worker=unique("worker"))
    dramatiq_queue = unique("dramatiq").replace(".", "-")
    bridge = await asyncio.to_thread(start_bridge, vhost, "catalog-bridge",
                                     env={"CARGO_BRIDGE_QUEUES": dramatiq_queue})
    try:
        message_id = str(uuid.uuid4())
        body = {"queue_name": dramatiq_queue, "actor_name": name, "args": [3], "kwargs": {},
                "options": {"time_limit": 60_000}, "message_id": message_id,
                "message_timestamp": time.time() * 1000}
        connection = await aio_pika.connect(vhost.rabbitmq_url)
        async with connection:
            channel = await connection.channel()
            await channel.default_exchange.publish(
                aio_pika.Message(json.dumps(body).encode(), content_type="application/json"),
                routing_key=dramatiq_queue)
            held = await channel.declare_queue(queue, passive=True)
            message = await eventually(lambda: held.get(no_ack=True, fail=False), 60,
                                       f"a message in {queue}")
            await held.delete(if_unused=False, if_empty=False)
    finally:
        bridge.stop()
    headers = message.headers
    assert (headers["id"], headers["task"]) == (message_id, name)
    # The message's 60 s is capped by the task's announced 30 s hard limit.
    assert headers["timelimit"] == [30.0, None]
    assert json.loads(message.body)[0] == [3]


async def test_a_gateway_process_that_cannot_import_task_code_validates_from_the_catalog(
        vhost: Settings) -> None:
    await announce_builtin_tasks(vhost)
    port = free_port()
    # ``workers`` made unimportable in the gateway process: any import of task
    # code there fails (and would stop the gateway).
    code = ("import sys; sys.modules['workers'] = None; from cargoctl.main import main; "
            f"sys.argv = ['cargoctl', 'gateway', '--host', '127.0.0.1', '--port', '{port}']; "
            "main()")
    proc = Proc("gateway-no-tasks", [sys.executable, "-c", code], process_env(vhost))
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async def readyz() -> int:
                assert proc.alive(), proc.output()
                async with http.get(f"{url}/readyz") as resp:
                    return resp.status

            await eventually(readyz, 60, lambda: f"the gateway ready:\n{proc.output()}",
                             until=lambda status: status == 200,
                             ignoring=(aiohttp.ClientConnectionError,))
            async with http.post(f"{url}/distance/", params={"x": 3, "y": 4}) as resp:
                distance = resp.status, await resp.json()
            async with http.post(f"{url}/tasks/sleep",
                                 json={"args": [-1], "kwargs": {"steps": 2.5}}) as resp:
                invalid = resp.status, await resp.json()
            async with http.get(f"{url}/openapi.json") as resp:
                documented = resp.status
            assert proc.alive(), proc.output()
    finally:
        proc.stop()
    assert distance[0] == 202, distance
    assert invalid[0] == 422, invalid
    assert invalid[1]["error"]["details"] == [
        {"loc": ["args", 0], "msg": "Input should be greater than or equal to 0"},
        {"loc": ["kwargs", "steps"], "msg": "Input should be a valid integer"}]
    assert documented == 200


async def test_after_a_reconnect_the_gateway_reads_on_from_where_it_was(vhost: Settings) -> None:
    before, after = unique("acme.before"), unique("acme.after")
    old, new = unique("worker-old"), unique("worker-new")
    await announce(vhost, [task_with_schema(before, NUMBER_X)], worker=old)
    await publish_catalog_message(vhost, b"garbage read once")
    proxy = BrokerProxy("127.0.0.1", 5672)
    await proxy.start()
    url = vhost.rabbitmq_url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
    assert url != vhost.rabbitmq_url, "RABBITMQ_URL must name 127.0.0.1:5672"
    try:
        async with running_gateway(vhost.model_copy(update={"rabbitmq_url": url}),
                                   builtin_catalog=False) as gw:
            assert (await post(gw, before, {"args": [1]}))[0] == 202
            async with gw.http.get(f"{gw.url}/metrics") as resp:
                first = parse(await resp.text())
            await proxy.go_down()

            async def disconnected() -> bool:
                async with gw.http.get(f"{gw.url}/readyz") as resp:
                    return resp.status == 503

            await eventually(disconnected, 60, "the gateway noticing the broker is gone")
            # While it is away: one worker leaves, another arrives.
            await withdraw(vhost, worker=old)
            await announce(vhost, [task_with_schema(after, NUMBER_X)], worker=new)
            await proxy.come_back()
            await gw.wait_ready(timeout=60)

            async def caught_up() -> bool:
                return (await post(gw, after, {"args": [1]}))[0] == 202

            await eventually(caught_up, 60, "the announcement made while disconnected")
            gone = await post(gw, before, {"args": [1]})
            async with gw.http.get(f"{gw.url}/metrics") as resp:
                then = parse(await resp.text())
    finally:
        await proxy.stop()
    assert gone[0] == 404, gone
    # Resumed after the last offset read, not replayed: the garbage was counted once.
    malformed = [total(samples, "cargo_catalog_announcements_rejected_total",
                       reason="malformed") for samples in (first, then)]
    assert malformed[0] >= 1
    assert malformed[1] == malformed[0]
