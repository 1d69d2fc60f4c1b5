"""The disaster-recovery drill of ops/disaster-recovery.md, against the real broker.

Back up the vhost's definitions, wipe the vhost (the broker lost), restore the
definitions into a new one: the topology is back exactly, clients saw 503 with
Retry-After meanwhile, and once the gateways are restarted tasks flow again
through the worker that lived through it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from broker.management import ManagementClient
from broker.settings import Settings
from broker.topology import build_topology
from tests.support.gateway import running_gateway
from tests.support.processes import start_worker
from tests.support.rabbit import private_vhost
from tests.support.workers import declared_differences

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def vhost(rabbitmq: Settings) -> Iterator[Settings]:
    with private_vhost("cargo-test-dr") as settings:
        yield settings


async def test_definitions_backed_up_restore_a_wiped_vhost_and_tasks_flow_again(
        vhost: Settings, tmp_path: Path) -> None:
    topology = build_topology(vhost)
    user = urlsplit(vhost.rabbitmq_url).username or "guest"
    worker = await asyncio.to_thread(start_worker, vhost, "survivor", 2)
    try:
        async with running_gateway(vhost) as gw:
            before = await gw.wait_state(await gw.submit_distance(), {"succeeded"})
            assert before["result"] == 5.0

            # 1. the backup: the live vhost's definitions, as a file
            async with ManagementClient(vhost.management_api) as api:
                backup = tmp_path / "definitions.json"
                backup.write_text(json.dumps(await api.export_definitions(vhost.vhost)))
                # 2. the disaster: the vhost and everything in it is gone
                await api.delete_vhost(vhost.vhost)

            # what clients see meanwhile: 503 with Retry-After, never a hang or a 500
            async def refused() -> tuple[int, str | None]:
                async with gw.http.post(f"{gw.url}/distance/?x=3&y=4") as resp:
                    return resp.status, resp.headers.get("Retry-After")

            status, retry_after = await refused()
            for _ in range(50):
                if status == 503:
                    break
                await asyncio.sleep(0.2)
                status, retry_after = await refused()
            assert status == 503
            assert retry_after == str(vhost.retry_after_seconds)

        # 3. the restore: a new vhost, its permissions, the backed-up definitions
        async with ManagementClient(vhost.management_api) as api:
            await api.create_vhost(vhost.vhost, user)
            await api.import_definitions(vhost.vhost, json.loads(backup.read_text()))
        assert await declared_differences(vhost, topology) == [], "the topology is back, exactly"

        # 4. gateways restarted (the events stream starts again at offset 0); the
        #    worker reconnected by itself
        async with running_gateway(vhost) as gw:
            after = await gw.wait_state(await gw.submit_distance(6, 8), {"succeeded"},
                                        timeout=120)
        assert after["result"] == 10.0
        assert worker.alive()
    finally:
        await asyncio.to_thread(worker.stop)
