"""``GET /queues`` and ``GET /workers`` (the console's "Queues and workers" page):
real RabbitMQ and its management API, real ``cargoctl worker`` processes, a real
gateway. Each test has a vhost of its own, so it knows every queue and worker in it.

The management API's figures are statistics RabbitMQ refreshes every few
seconds, so every check polls until the figures match (bounded), never sleeps
and looks once.
"""

from __future__ import annotations

import asyncio
import os
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bench.proxy import BrokerProxy
from broker.settings import Settings
from broker.topology import dead_letter_queue_name
from gateway.queue_stats import MANAGEMENT_TIMEOUT
from tests.support.catalog import announce, builtin_tasks, task_with_schema
from tests.support.deadletters import free_port, publish_raw
from tests.support.eventually import eventually
from tests.support.gateway import Gateway, running_gateway
from tests.support.processes import BIN, LOGS, ROOT, Proc, process_env, start_worker
from tests.support.processes import wait_for_consumer as wait_consuming
from tests.support.rabbit import private_vhost

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
NUMBER_N = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
            "additionalProperties": False, "x-cargo-positional": ["n"]}
TEAM_SOURCE = '''
    from celery import shared_task


    @shared_task(queue="{queue}")
    def total(n: int) -> int:
        """Sum 0..n-1."""
        return sum(range(n))
'''


@pytest.fixture
def vhost(rabbitmq: Settings) -> Iterator[Settings]:
    with private_vhost("cargo-test-console") as settings:
        yield settings


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def get(gw: Gateway, path: str, **headers: str) -> tuple[int, Any]:
    async with gw.http.get(f"{gw.url}{path}", headers=headers) as resp:
        return resp.status, await resp.json()


async def poll(gw: Gateway, path: str, done: Callable[[Any], bool], what: str,
               timeout: float = 90) -> Any:
    """GET ``path`` until ``done(body)``; the last body in the error otherwise."""
    async def body() -> Any:
        status, body = await get(gw, path)
        assert status == 200, body
        return body

    return await eventually(body, timeout, f"{what} (GET {path})", until=done)


def queue_named(body: Any, name: str) -> dict[str, Any] | None:
    return next((q for q in body["queues"] if q["name"] == name), None)


def workers_named(body: Any, prefix: str) -> list[dict[str, Any]]:
    return [w for w in body["workers"] if w["hostname"].startswith(prefix)]


async def stop(worker: Proc, *, graceful: bool) -> None:
    if not graceful:
        worker.kill()  # SIGKILL: a task that sleeps for minutes would hold a warm stop
    await asyncio.to_thread(worker.stop)


@asynccontextmanager
async def team_worker(settings: Settings, tmp_path: Path) -> AsyncIterator[str]:
    """``cargoctl worker --queues <q>`` of a team's module (on the import path of this
    worker only) whose task is routed to the team's own queue ``q``; yields ``q``."""
    module, queue = unique("console_team").replace("-", "_"), unique("team")
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(TEAM_SOURCE.format(queue=queue)))
    run_id = f"{os.getpid()}-{time.time_ns()}"
    proc = Proc("console-team", [
        str(BIN / "cargoctl"), "worker", "--queues", queue, "--concurrency", "1",
        "--hostname", f"console-team-{run_id}@%h"],
        process_env(settings, CARGO_TASK_MODULES=module, CARGO_WORKER_METRICS_PORT="0",
                    CARGO_WORKER_HEARTBEAT_FILE=str(LOGS / f"console-team-{run_id}.json"),
                    PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)])))
    try:
        await asyncio.to_thread(wait_consuming, settings, queue, proc)
        yield queue
    finally:
        await stop(proc, graceful=True)


async def test_queues_lists_ready_unacked_consumers_and_dead_letter_depth(
        vhost: Settings) -> None:
    queue, dead_letters = vhost.task_queue, dead_letter_queue_name(vhost.task_queue)
    # The test announcer offers the built-in tasks: sleep is accepted before a worker runs.
    async with running_gateway(vhost) as gw:
        for _ in range(2):  # no task in there: a worker dead-letters each as poison
            await publish_raw(vhost, b"\x00 no task in here")
        await poll(gw, "/queues", lambda b: queue_named(b, queue) == {
            "name": queue, "ready": 2, "unacked": 0, "consumers": 0,
            "dead_letter": {"name": dead_letters, "ready": 0}}, "two messages waiting")

        worker = await asyncio.to_thread(start_worker, vhost, "console-queues", 1)
        try:
            await poll(gw, "/queues", lambda b: queue_named(b, queue) == {
                "name": queue, "ready": 0, "unacked": 0, "consumers": 1,
                "dead_letter": {"name": dead_letters, "ready": 2}}, "both dead-lettered")
            # One worker process, prefetch 1: it holds one and the other two wait.
            for _ in range(3):
                await gw.submit("sleep", args=[600])
            body = await poll(gw, "/queues", lambda b: queue_named(b, queue) == {
                "name": queue, "ready": 2, "unacked": 1, "consumers": 1,
                "dead_letter": {"name": dead_letters, "ready": 2}}, "one running, two waiting")
        finally:
            await stop(worker, graceful=False)
    assert [q["name"] for q in body["queues"]] == [queue]


async def test_queues_includes_a_team_queue_announced_by_a_worker(
        vhost: Settings, tmp_path: Path) -> None:
    async with running_gateway(vhost) as gw:
        async with team_worker(vhost, tmp_path) as team_queue:
            body = await poll(gw, "/queues", lambda b: queue_named(b, team_queue) == {
                "name": team_queue, "ready": 0, "unacked": 0, "consumers": 1,
                "dead_letter": {"name": dead_letter_queue_name(team_queue), "ready": 0}},
                "the team's queue with its worker")
            # The topology's queue first, then the others by name.
            assert [q["name"] for q in body["queues"]] == [vhost.task_queue, team_queue]
            workers = await poll(gw, "/workers", lambda b: bool(workers_named(b, "console-team")),
                                 "the team's worker")
            assert workers_named(workers, "console-team")[0]["queues"] == [team_queue]
        # Its worker gone, the queue is still a Cargo task queue on the broker: still
        # listed (a backlog with no worker left is what the page is for).
        await poll(gw, "/workers", lambda b: not workers_named(b, "console-team"),
                   "the team's worker withdrawn")
        await poll(gw, "/queues", lambda b: (queue_named(b, team_queue) or {}).get(
            "consumers") == 0, "the team's queue without consumers")


async def test_queues_shows_zeros_for_an_announced_queue_that_does_not_exist_yet(
        vhost: Settings) -> None:
    reports = unique("reports")
    await announce(vhost, [task_with_schema(unique("acme.report"), NUMBER_N, queue=reports)],
                   worker=unique("announcer"))
    async with running_gateway(vhost) as gw:  # ready: it has read that announcement
        status, body = await get(gw, "/queues")
    assert status == 200, body
    assert queue_named(body, reports) == {
        "name": reports, "ready": 0, "unacked": 0, "consumers": 0,
        "dead_letter": {"name": dead_letter_queue_name(reports), "ready": 0}}


async def test_workers_shows_concurrency_and_memory_of_a_live_worker(vhost: Settings) -> None:
    # Announcing every second, so the memory it gains shows soon after.
    worker = await asyncio.to_thread(start_worker, vhost, "console-live", 2,
                                     CARGO_CATALOG_INTERVAL="1")
    try:
        async with running_gateway(vhost, builtin_catalog=False) as gw:
            body = await poll(gw, "/workers", lambda b: len(b["workers"]) == 1,
                              "the worker announced")
            (first,) = body["workers"]
            assert first["hostname"].startswith("console-live-")
            assert first["queues"] == [vhost.task_queue]
            assert first["concurrency"] == 2
            assert first["processes"] == 3  # the main process and two pool children
            assert first["rss_bytes"] > 0
            # A task in a pool child keeps 128 MiB: the next announcements count it.
            task_id = await gw.submit("memory_leak_task",
                                      kwargs={"mb_per_second": 128, "seconds": 1})
            assert (await gw.wait_state(task_id, {"succeeded", "dead_lettered"}))[
                "state"] == "succeeded"
            grown = await poll(gw, "/workers", lambda b: len(b["workers"]) == 1 and b[
                "workers"][0]["rss_bytes"] >= first["rss_bytes"] + 100 * MIB,
                "the pool child's memory counted")
            seen = [datetime.fromisoformat(w["last_seen"]) for w in (first, grown["workers"][0])]
            assert seen[1] > seen[0]  # a later announcement
            assert grown["workers"][0]["processes"] == 3
    finally:
        await stop(worker, graceful=False)


async def test_a_gracefully_stopped_worker_disappears_from_workers(vhost: Settings) -> None:
    # An announcement that holds 15 minutes: only its withdrawal can remove it in time.
    worker = await asyncio.to_thread(start_worker, vhost, "console-stop", 1,
                                     CARGO_CATALOG_INTERVAL="300")
    try:
        async with running_gateway(vhost, builtin_catalog=False) as gw:
            await poll(gw, "/workers", lambda b: bool(workers_named(b, "console-stop")),
                       "the worker announced")
            await stop(worker, graceful=True)  # SIGTERM: Celery's warm shutdown
            body = await poll(gw, "/workers", lambda b: not workers_named(b, "console-stop"),
                              "the worker withdrawn", timeout=60)
    finally:
        await stop(worker, graceful=False)
    assert body == {"workers": []}


async def test_workers_shows_null_figures_for_a_worker_that_does_not_announce_them(
        vhost: Settings) -> None:
    # As a worker of the previous release announces: no figures at all.
    older = await announce(vhost, builtin_tasks(vhost.task_queue), worker=unique("older"))
    async with running_gateway(vhost, builtin_catalog=False) as gw:
        status, body = await get(gw, "/workers")
    assert status == 200, body
    assert body == {"workers": [{
        "hostname": older.worker, "queues": [], "concurrency": None, "rss_bytes": None,
        "processes": None, "last_seen": older.announced_at.isoformat()}]}


async def test_queues_answers_503_naming_the_management_api_when_it_is_unreachable(
        vhost: Settings) -> None:
    port = free_port()  # nothing listens there
    settings = vhost.model_copy(update={
        "management_url": f"http://guest:not-to-be-shown@127.0.0.1:{port}"})
    async with running_gateway(settings) as gw:
        async with gw.http.get(f"{gw.url}/queues") as resp:
            status, text = resp.status, await resp.text()
            retry_after = resp.headers.get("Retry-After")
            body = await resp.json()
        workers_status, _ = await get(gw, "/workers")
    assert status == 503, text
    assert retry_after == str(settings.retry_after_seconds)
    assert body["error"]["code"] == "management_unavailable"
    assert f"http://guest:***@127.0.0.1:{port}" in body["error"]["message"]
    assert body["error"]["details"] == {"management_url": f"http://guest:***@127.0.0.1:{port}"}
    assert "not-to-be-shown" not in text
    assert workers_status == 200  # the workers come from the catalog, not from there


async def test_queues_answers_503_when_the_management_api_refuses_the_credentials(
        vhost: Settings) -> None:
    real = urlsplit(vhost.management_api)
    url = f"http://{real.username}:wrong-password@{real.hostname}:{real.port}"
    async with running_gateway(vhost.model_copy(update={"management_url": url})) as gw:
        async with gw.http.get(f"{gw.url}/queues") as resp:
            status, text = resp.status, await resp.text()
            body = await resp.json()
    assert status == 503, text
    assert body["error"]["code"] == "management_unavailable"
    assert "HTTP 401" in body["error"]["message"]
    assert body["error"]["details"] == {
        "management_url": f"http://{real.username}:***@{real.hostname}:{real.port}"}
    assert "wrong-password" not in text


async def test_queues_answers_503_while_the_management_api_hangs_and_200_once_it_answers(
        vhost: Settings) -> None:
    real = urlsplit(vhost.management_api)
    assert real.hostname is not None
    assert real.port is not None
    proxy = BrokerProxy(real.hostname, real.port)
    await proxy.start()
    url = f"http://{real.username}:{real.password}@127.0.0.1:{proxy.port}"
    try:
        async with running_gateway(vhost.model_copy(update={"management_url": url})) as gw:
            proxy.freeze()  # connections accepted, nothing answered
            status, body = await get(gw, "/queues")
            assert status == 503, body
            assert body["error"]["code"] == "management_unavailable"
            assert f"no answer within {MANAGEMENT_TIMEOUT:g} s" in body["error"]["message"]
            proxy.thaw()
            # The failure is kept for a second, then the management API is asked again.
            async def queues_status() -> int:
                status = (await get(gw, "/queues"))[0]
                assert status in (200, 503), status
                return status

            await eventually(queues_status, 30, "/queues answering 200 after the thaw",
                             until=lambda status: status == 200)
    finally:
        await proxy.stop()


async def test_queues_and_workers_need_the_token_when_auth_is_on(vhost: Settings) -> None:
    token = "console-token-for-tests"
    async with running_gateway(vhost.model_copy(update={"auth_token": token})) as gw:
        for path in ("/queues", "/workers"):
            status, body = await get(gw, path)
            assert (status, body["error"]["code"]) == (401, "unauthorized"), path
            status, body = await get(gw, path, Authorization=f"Bearer {token}")
            assert status == 200, body
