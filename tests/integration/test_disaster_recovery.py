"""Losing the vhost, against the real broker: the drill of ops/disaster-recovery.md,
and a gateway and a worker that live through it and recover by themselves.

Every wait is bounded (``phase``, or ``eventually`` for a poll): a step that does
not finish fails the test with the step's name instead of hanging until pytest's
timeout.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from structlog.testing import capture_logs

from broker.management import ManagementClient
from broker.settings import Settings
from broker.topology import build_topology
from tests.support.eventually import eventually
from tests.support.gateway import Gateway, running_gateway
from tests.support.processes import Proc, queue_consumers, start_worker
from tests.support.rabbit import private_vhost
from tests.support.workers import declared_differences

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

# Deleting a vhost with quorum queues and a stream takes a while on a busy machine.
MANAGEMENT_TIMEOUT = 60.0


@pytest.fixture
def vhost(rabbitmq: Settings) -> Iterator[Settings]:
    with private_vhost("cargo-test-dr") as settings:
        yield settings


@asynccontextmanager
async def phase(name: str, seconds: float) -> AsyncIterator[None]:
    """Bound one step of the drill; say which one ran out of time."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise AssertionError(f"{name}: not done within {seconds:g}s") from None


async def readyz(gw: Gateway) -> tuple[int, dict[str, Any]]:
    async with gw.http.get(f"{gw.url}/readyz") as resp:
        return resp.status, await resp.json()


async def submit_refused(gw: Gateway) -> tuple[int, str | None]:
    async with gw.http.post(f"{gw.url}/distance/?x=3&y=4") as resp:
        return resp.status, resp.headers.get("Retry-After")


async def worker_consumes(settings: Settings, worker: Proc) -> bool:
    assert worker.alive(), f"the worker exited:\n{worker.output()[-3000:]}"
    try:
        return await queue_consumers(settings, settings.task_queue) > 0
    except Exception:  # the queue is not there (yet)
        return False


async def test_definitions_backed_up_restore_a_wiped_vhost_and_tasks_flow_again(
        vhost: Settings, tmp_path: Path) -> None:
    topology = build_topology(vhost)
    user = urlsplit(vhost.rabbitmq_url).username or "guest"
    worker = await asyncio.to_thread(start_worker, vhost, "survivor", 2)
    try:
        async with running_gateway(vhost) as gw:
            async with phase("a task before the disaster", 90):
                before = await gw.wait_state(await gw.submit_distance(), {"succeeded"})
            assert before["result"] == 5.0

            async with phase("backup and wipe", 2 * MANAGEMENT_TIMEOUT):
                async with ManagementClient(vhost.management_api, MANAGEMENT_TIMEOUT) as api:
                    # 1. the backup: the live vhost's definitions, as a file
                    backup = tmp_path / "definitions.json"
                    backup.write_text(json.dumps(await api.export_definitions(vhost.vhost)))
                    # 2. the disaster: the vhost and everything in it is gone
                    await api.delete_vhost(vhost.vhost)

            # what clients see meanwhile: 503 with Retry-After, never a hang or a 500
            _, retry_after = await eventually(lambda: _refused_with_503(gw), 30,
                                              "submissions refused with 503")
            assert retry_after == str(vhost.retry_after_seconds)

            # 3. the restore: a new vhost, its permissions, the backed-up definitions
            async with phase("restore", 2 * MANAGEMENT_TIMEOUT):
                async with ManagementClient(vhost.management_api, MANAGEMENT_TIMEOUT) as api:
                    await api.create_vhost(vhost.vhost, user)
                    await api.import_definitions(vhost.vhost, json.loads(backup.read_text()))
                assert await declared_differences(vhost, topology) == [], "the topology is back"

            # 4. the gateway that lived through it reconnects and reads the new
            #    events stream from its start; the worker reconnects by itself
            await eventually(lambda: _ready(gw), 90, "the gateway ready again")
            await eventually(lambda: worker_consumes(vhost, worker), 120,
                             "the worker consuming again")
            async with phase("a task after the restore", 120):
                after = await gw.wait_state(await gw.submit_distance(6, 8), {"succeeded"},
                                            timeout=110)
            assert after["result"] == 10.0
        assert worker.alive()
    finally:
        await asyncio.to_thread(worker.stop)


async def _refused_with_503(gw: Gateway) -> tuple[int, str | None] | None:
    status, retry_after = await submit_refused(gw)
    return (status, retry_after) if status == 503 else None


async def _ready(gw: Gateway) -> bool:
    return (await readyz(gw))[0] == 200


async def test_a_deleted_vhost_is_named_in_readyz_and_the_log_and_gateway_and_worker_recover_when_it_is_back(  # noqa: E501
        vhost: Settings) -> None:
    topology = build_topology(vhost)
    user = urlsplit(vhost.rabbitmq_url).username or "guest"
    worker = await asyncio.to_thread(start_worker, vhost, "orphan", 2)
    try:
        with capture_logs() as logs:
            async with running_gateway(vhost) as gw:
                async with phase("a task before the vhost is lost", 90):
                    before = await gw.wait_state(await gw.submit_distance(), {"succeeded"})
                assert before["result"] == 5.0

                async with phase("delete the vhost", MANAGEMENT_TIMEOUT + 5):
                    async with ManagementClient(vhost.management_api,
                                                MANAGEMENT_TIMEOUT) as api:
                        await api.delete_vhost(vhost.vhost)

                async def missing_vhost_reported() -> dict[str, Any] | None:
                    status, body = await readyz(gw)
                    reason = body["checks"]["broker"]
                    return body if status == 503 and "does not exist" in reason else None

                body = await eventually(missing_vhost_reported, 60,
                                        "/readyz says the vhost does not exist")
                assert f"vhost {vhost.vhost!r} does not exist" in body["checks"]["broker"]
                assert "530" in body["checks"]["broker"]
                failures = [entry for entry in logs
                            if entry["event"] in ("broker.connect_failed",
                                                  "broker.disconnected")]
                # RabbitMQ closes with "vhost ... is deleted", or "is down" when the
                # vhost's processes stopped first
                assert any(entry["event"] == "broker.disconnected"
                           and f"vhost {vhost.vhost!r}" in entry["error"]
                           and "(320 CONNECTION_FORCED" in entry["error"]
                           for entry in failures), failures
                assert any("does not exist" in entry["error"] and entry["vhost_lost"]
                           for entry in failures), failures
                status, _ = await submit_refused(gw)
                assert status == 503

                # the vhost comes back empty, with the user's permissions
                async with phase("recreate the vhost", MANAGEMENT_TIMEOUT + 5):
                    async with ManagementClient(vhost.management_api,
                                                MANAGEMENT_TIMEOUT) as api:
                        await api.create_vhost(vhost.vhost, user)
                reconnect_started = time.monotonic()
                await eventually(lambda: _ready(gw), 90, "the gateway ready again")
                print(f"\ngateway ready {time.monotonic() - reconnect_started:.1f}s "
                      "after the vhost was back")
                # the gateway declared the whole topology again by itself
                assert await declared_differences(vhost, topology) == []
                await eventually(lambda: worker_consumes(vhost, worker), 120,
                                 "the worker consuming again")
                print(f"worker consuming {time.monotonic() - reconnect_started:.1f}s "
                      "after the vhost was back")
                # the task runs, and this gateway (reading the new stream) sees it end
                async with phase("a task after the vhost is back", 120):
                    after = await gw.wait_state(await gw.submit_distance(6, 8), {"succeeded"},
                                                timeout=110)
                assert after["result"] == 10.0
        assert worker.alive()
    finally:
        await asyncio.to_thread(worker.stop)
