"""Metrics after real traffic: the counts match what was done, on gateways and a prefork worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from broker.celery_protocol import encode_task
from broker.settings import Settings
from tests.support.gateway import running_gateway
from tests.support.metrics import free_port, scrape, total, wait_scrape
from tests.support.processes import start_chaos_worker
from tests.support.rabbit import private_vhost
from tests.support.workers import gateway_publisher, submit

pytestmark = pytest.mark.integration

SUCCEEDED_VIA_A, SUCCEEDED_VIA_B = 6, 4
LEAKS = 1          # through the gateway: dead-lettered memory_limit
PERMANENT = 2      # through the gateway's publisher (not in the gateway's catalog): failed


@pytest.fixture
def vhost(rabbitmq: Settings) -> Iterator[Settings]:
    """A vhost of its own: no other worker takes these tasks, no other dead letters count."""
    with private_vhost("cargo-test-metrics") as settings:
        yield settings


async def test_gateway_and_prefork_worker_metrics_count_exactly_what_was_done_once(
        vhost: Settings) -> None:
    port = free_port()
    worker = await asyncio.to_thread(
        start_chaos_worker, vhost, "metrics", 3, CARGO_WORKER_METRICS_PORT=str(port),
        CARGO_TASK_LIMITS='{"memory_leak_task": {"memory_mb": 24}}')
    worker_url = f"http://127.0.0.1:{port}/metrics"
    try:
        async with running_gateway(vhost) as a, running_gateway(vhost) as b:
            done = [await a.submit_distance() for _ in range(SUCCEEDED_VIA_A)]
            done += [await b.submit_distance() for _ in range(SUCCEEDED_VIA_B)]
            leaks = [await a.submit("memory_leak_task", kwargs={"mb_per_second": 64})
                     for _ in range(LEAKS)]
            async with gateway_publisher(vhost) as publisher:
                permanent = [await submit(publisher, vhost, "fail_permanently", [])
                             for _ in range(PERMANENT)]
                rejecting = await submit(publisher, vhost, "reject_self", [])
                # expired before any worker sees it: discarded as revoked
                past = datetime.now(UTC) - timedelta(minutes=1)
                await publisher.publish_task(
                    encode_task(str(uuid.uuid4()), "calculate_distance", [1, 1], expires=past),
                    vhost.task_queue)
            for task_id in done:
                assert (await a.wait_state(task_id, {"succeeded", "dead_lettered"}))[
                    "state"] == "succeeded"
            for task_id in [*leaks, *permanent, rejecting]:
                assert (await b.wait_state(task_id, {"succeeded", "dead_lettered"}))[
                    "state"] == "dead_lettered"

            succeeded = SUCCEEDED_VIA_A + SUCCEEDED_VIA_B
            worker_metrics = await wait_scrape(worker_url, lambda s: (
                total(s, "celery_task_succeeded_total") == succeeded
                and total(s, "cargo_dead_lettered_total") == LEAKS + PERMANENT + 1
                and total(s, "celery_task_revoked_total") == 1))
            gw_a = await scrape(f"{a.url}/metrics")
            gw_b = await scrape(f"{b.url}/metrics")
    finally:
        await asyncio.to_thread(worker.stop)

    # Each gateway counts only what it was sent: the sum over replicas is the truth.
    distance = {"name": "calculate_distance"}
    assert total(gw_a, "celery_task_sent_total", **distance) == SUCCEEDED_VIA_A
    assert total(gw_b, "celery_task_sent_total", **distance) == SUCCEEDED_VIA_B
    assert total(gw_a, "celery_task_sent_total", name="memory_leak_task") == LEAKS
    assert total(gw_b, "celery_task_sent_total", name="memory_leak_task") == 0
    assert total(gw_a, "cargo_submissions_total", outcome="accepted") == SUCCEEDED_VIA_A + LEAKS
    assert total(gw_b, "cargo_submissions_total", outcome="accepted") == SUCCEEDED_VIA_B
    assert total(gw_a, "cargo_publish_latency_seconds_count") == SUCCEEDED_VIA_A + LEAKS
    # Both replicas read every event, but neither turns them into task counters.
    for gw in (gw_a, gw_b):
        assert total(gw, "celery_task_succeeded_total") == 0
        assert total(gw, "cargo_dead_lettered_total") == 0
        assert total(gw, "cargo_dead_letter_queue_depth", queue="cargo") == LEAKS + PERMANENT + 1
        assert total(gw, "celery_queue_length", queue_name="cargo") == 0
        assert total(gw, "celery_active_consumer_count", queue_name="cargo") == 1
        assert total(gw, "cargo_gateway_broker_connected") == 1

    # The worker (three pool processes) counted every task once, in its main process.
    w = worker_metrics
    succeeded = SUCCEEDED_VIA_A + SUCCEEDED_VIA_B
    ran = succeeded + LEAKS + PERMANENT + 1  # + reject_self
    assert total(w, "celery_task_received_total") == ran + 1  # + the expired one
    assert total(w, "celery_task_started_total") == ran
    assert total(w, "celery_task_revoked_total", **distance) == 1
    assert total(w, "celery_task_rejected_total", name="reject_self") == 1
    assert total(w, "cargo_dead_lettered_total", queue="cargo", reason="rejected") == 1
    assert total(w, "celery_task_succeeded_total", **distance) == succeeded
    assert total(w, "celery_task_runtime_count", **distance) == succeeded
    assert total(w, "celery_task_queue_wait_time_count") == ran
    assert total(w, "celery_task_failed_total", name="fail_permanently",
                 exception="PermanentError") == PERMANENT
    assert total(w, "celery_task_failed_total", name="memory_leak_task",
                 exception="MemoryLimitExceeded") == LEAKS
    assert total(w, "celery_task_retried_total") == 0
    assert total(w, "cargo_dead_lettered_total", queue="cargo", reason="failed") == PERMANENT
    assert total(w, "cargo_dead_lettered_total", queue="cargo",
                 reason="memory_limit") == LEAKS
    assert total(w, "celery_worker_up") == 1
    assert total(w, "cargo_worker_broker_connected") == 1
    assert total(w, "cargo_worker_heartbeat_timestamp_seconds") > 0
    labels = {dict(pairs).get("hostname") for (name, pairs) in w if name == "celery_worker_up"}
    assert len(labels) == 1, labels
