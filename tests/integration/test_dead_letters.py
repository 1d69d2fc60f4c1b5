"""Every failure ends in ``<queue>.XQ`` with a reason: real Celery workers, real RabbitMQ.

One vhost with small limits (delivery limit 2, ``sleep`` hard time limit 2 s)
and one worker that also offers the failing tasks of ``tests.support.chaos``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.events import TaskEvent
from broker.settings import Settings
from broker.topology import REASON_HEADER, dead_letter_queue_name, dead_letter_watch_queue_name
from tests.support.deadletters import (
    DELIVERY_LIMIT,
    TIME_LIMIT,
    chaos_vhost,
    dead_letter_messages,
    dead_letter_of,
    free_port,
    metric_value,
    publish_raw,
    scrape,
    wait_dead_letter,
)
from tests.support.events import StreamEvents
from tests.support.gateway import Gateway, events_of, running_gateway, terminal
from tests.support.processes import BIN, Proc, process_env
from tests.support.workers import gateway_publisher, submit, wait_queue_empty

pytestmark = pytest.mark.integration


class Chaos:
    def __init__(self, settings: Settings, worker: Proc, metrics_port: int) -> None:
        self.settings = settings
        self.worker = worker
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"


@pytest.fixture(scope="module")
def chaos(rabbitmq: Settings) -> Iterator[Chaos]:
    port = free_port()
    with chaos_vhost("cargo-test-dlq", metrics_port=port) as (settings, worker):
        yield Chaos(settings, worker, port)


def states(events: list[TaskEvent]) -> list[str]:
    return [e.state.value for e in events]


async def run_to_end(settings: Settings, name: str, args: list[Any] | None = None,
                     kwargs: dict[str, Any] | None = None,
                     timeout: float = 90) -> tuple[str, list[TaskEvent]]:
    async with StreamEvents(settings) as events, gateway_publisher(settings) as pub:
        task_id = await submit(pub, settings, name, args or [], kwargs)
        return task_id, await events.until_state(task_id, timeout=timeout)


# failed


async def test_a_task_that_keeps_raising_is_retried_with_backoff_then_dead_lettered_with_its_error(
    chaos: Chaos,
) -> None:
    task_id, history = await run_to_end(chaos.settings, "always_fail", ["kaput"])
    assert states(history) == ["started", "failed", "retrying", "started", "failed", "retrying",
                               "started", "failed", "dead_lettered"]
    assert [e.retries for e in history if e.state.value == "retrying"] == [1, 2]
    # a retry is delayed (whole seconds, at least one), never immediate: a lower
    # bound only, which a slow machine cannot break
    gaps = [(b.ts - a.ts).total_seconds() for a, b in itertools.pairwise(history)
            if a.state.value == "retrying"]
    assert all(gap >= 0.9 for gap in gaps), gaps
    final = history[-1]
    assert final.reason == "failed"
    assert final.error == {"type": "RuntimeError", "message": "kaput"}
    message = await wait_dead_letter(chaos.settings, task_id)
    headers = message["properties"]["headers"]
    assert headers[REASON_HEADER] == "failed"
    assert headers["x-cargo-error-type"] == "RuntimeError"
    assert headers["x-cargo-error-message"] == "kaput"
    assert headers["task"] == "always_fail"
    assert json.loads(message["payload"])[0] == ["kaput"]  # the original body
    assert chaos.worker.alive()


async def test_an_error_marked_non_retryable_goes_straight_to_the_dead_letter_queue(
    chaos: Chaos,
) -> None:
    task_id, history = await run_to_end(chaos.settings, "fail_permanently", ["never"])
    assert states(history) == ["started", "failed", "dead_lettered"]
    assert history[-1].reason == "failed"
    assert history[-1].error == {"type": "PermanentError", "message": "never"}
    assert (await wait_dead_letter(chaos.settings, task_id))["properties"]["headers"][
        REASON_HEADER] == "failed"


async def test_arguments_that_do_not_fit_a_task_are_dead_lettered_without_retries(
    chaos: Chaos,
) -> None:
    _, history = await run_to_end(chaos.settings, "calculate_distance", ["three", 4])
    assert states(history) == ["started", "failed", "dead_lettered"]
    assert history[-1].error is not None
    assert history[-1].error["type"] == "TypeError"


# time_limit


async def test_a_task_past_its_hard_time_limit_is_stopped_and_dead_lettered_with_time_limit(
    chaos: Chaos,
) -> None:
    task_id, history = await run_to_end(chaos.settings, "sleep", [60], {"steps": 60})
    assert states(history)[0] == "started"
    assert history[-1].state.value == "dead_lettered"
    assert history[-1].reason == "time_limit"
    assert history[-1].error is not None
    assert f"time limit of {TIME_LIMIT}s" in history[-1].error["message"]
    assert states(history).count("dead_lettered") == 1
    message = await wait_dead_letter(chaos.settings, task_id)
    assert message["properties"]["headers"][REASON_HEADER] == "time_limit"
    assert chaos.worker.alive()
    # and the worker still serves
    _, after = await run_to_end(chaos.settings, "calculate_distance", [3, 4])
    assert after[-1].result == 5.0


# delivery_limit


async def test_a_task_that_kills_its_worker_every_time_is_dead_lettered_by_rabbitmq_after_the_delivery_limit(  # noqa: E501
    chaos: Chaos,
) -> None:
    async with StreamEvents(chaos.settings) as events, \
            gateway_publisher(chaos.settings) as pub:
        task_id = await submit(pub, chaos.settings, "crash_worker", [])
        history = await events.until_state(task_id, timeout=120)
        # A second dead_lettered event could only come from the task message or
        # the watcher's notice being delivered again. Once both queues are
        # drained, a later task's events come after anything those caused
        # (the stream is read in order).
        await wait_queue_empty(chaos.settings, chaos.settings.task_queue)
        await wait_queue_empty(chaos.settings,
                               dead_letter_watch_queue_name(chaos.settings.task_queue))
        marker = await submit(pub, chaos.settings, "calculate_distance", [3, 4])
        await events.until_state(marker, timeout=60)
        history = events.of(task_id)
    # the first delivery plus DELIVERY_LIMIT redeliveries, each killing its process
    # (counted from the worker's log: the child dies within the events merge window,
    # before its held ``started`` could leave, so the stream need not show them)
    received = chaos.worker.output().count(f"crash_worker[{task_id}] received")
    assert received == DELIVERY_LIMIT + 1, received
    assert [e.state.value for e in history if e.state.value == "dead_lettered"] == [
        "dead_lettered"]
    assert history[-1].reason == "delivery_limit"
    message = await wait_dead_letter(chaos.settings, task_id)
    headers = message["properties"]["headers"]
    assert REASON_HEADER not in headers  # RabbitMQ dead-lettered it, not Cargo
    assert headers["x-death"][0]["reason"] == "delivery_limit"
    assert headers["x-first-death-reason"] == "delivery_limit"
    await wait_queue_empty(chaos.settings, chaos.settings.task_queue)
    assert chaos.worker.alive()


# rejected


async def test_a_task_that_rejects_its_own_message_is_dead_lettered_with_rejected_after_its_start(
    chaos: Chaos,
) -> None:
    async with StreamEvents(chaos.settings) as events, \
            gateway_publisher(chaos.settings) as pub:
        task_id = await submit(pub, chaos.settings, "reject_self", [])
        # Both, in whatever order they come: the child's held ``started`` must not
        # trail the main process's ``dead_lettered`` (workers.event_window).
        await events.wait(lambda _: {"started", "dead_lettered"} <= set(states(
            events.of(task_id))), what="started and dead_lettered")
        history = events.of(task_id)
    assert states(history)[0] == "started", states(history)
    assert states(history)[-1] == "dead_lettered", states(history)
    assert history[-1].reason == "rejected"
    message = await wait_dead_letter(chaos.settings, task_id)
    assert message["properties"]["headers"]["x-death"][0]["reason"] == "rejected"


# poison


@pytest.mark.parametrize(("case", "body", "headers", "content_type"), [
    ("undecodable body", b"\xff\xfe not json", {"task": "calculate_distance"}, "application/json"),
    ("unknown task name", b'[[], {}, {"callbacks": null, "errbacks": null, "chain": null, '
                          b'"chord": null}]', {"task": "no_such_task"}, "application/json"),
    ("a Dramatiq message", None, {}, "application/json"),
    ("pickle", b"\x80\x04K\x01.", {"task": "calculate_distance"}, "application/x-python-serialize"),
], ids=["undecodable", "unknown-task", "dramatiq", "pickle"])
async def test_a_poison_message_is_dead_lettered_with_poison_not_acked_away_nor_redelivered(
    chaos: Chaos, case: str, body: bytes | None, headers: dict[str, Any], content_type: str,
) -> None:
    task_id = str(uuid.uuid4())
    if body is None:  # what dramatiq's RabbitmqBroker publishes
        body = json.dumps({"queue_name": "default", "actor_name": "calculate_distance",
                           "args": [3, 4], "kwargs": {}, "options": {}, "message_id": task_id,
                           "message_timestamp": 1700000000000}).encode()
    else:
        headers = {**headers, "id": task_id}
    async with StreamEvents(chaos.settings) as events:
        await publish_raw(chaos.settings, body, headers, content_type, message_id=task_id)
        history = await events.until_state(task_id, timeout=60)
    assert states(history) == ["dead_lettered"], case
    assert history[-1].reason == "poison"
    message = await wait_dead_letter(chaos.settings, task_id)
    assert message["properties"]["headers"][REASON_HEADER] == "poison"
    # it left the task queue (not requeued in a loop)
    await wait_queue_empty(chaos.settings, chaos.settings.task_queue)
    assert chaos.worker.alive()


# the gateway: terminal state, listing, replay, purge; metrics


async def test_get_task_and_websocket_subscribers_see_a_dead_lettered_task_with_its_reason(
    chaos: Chaos,
) -> None:
    async with running_gateway(chaos.settings) as gw, \
            gateway_publisher(chaos.settings) as pub:
        task_id = await submit(pub, chaos.settings, "fail_permanently", ["seen"])
        async with gw.ws(f"?task_id={task_id}") as ws:
            frames = await ws.receive_until(terminal(task_id), timeout=60)
        doc = await gw.wait_state(task_id, {"dead_lettered"})
    assert events_of(frames, task_id)[-1]["state"] == "dead_lettered"
    assert events_of(frames, task_id)[-1]["reason"] == "failed"
    assert doc["reason"] == "failed"
    assert doc["error"] == {"type": "PermanentError", "message": "seen"}
    assert "finished_at" in doc


async def _list(gw: Gateway, **params: str) -> tuple[int, Any]:
    async with gw.http.get(f"{gw.url}/dead-letters", params=params) as resp:
        return resp.status, await resp.json()


async def test_listing_dead_letters_shows_the_contract_fields_filters_by_reason_and_does_not_consume(  # noqa: E501
    chaos: Chaos,
) -> None:
    task_id, _ = await run_to_end(chaos.settings, "fail_permanently", ["listed"])
    await wait_dead_letter(chaos.settings, task_id)
    async with running_gateway(chaos.settings) as gw:
        status, first = await _list(gw, queue=chaos.settings.task_queue, reason="failed")
        assert status == 200, first
        status, again = await _list(gw, queue=chaos.settings.task_queue, reason="failed")
        status_other, other = await _list(gw, reason="poison")
    assert first == again  # reading did not remove anything
    item = next(i for i in first["items"] if i["task_id"] == task_id)
    assert item == {"task_id": task_id, "name": "fail_permanently",
                    "queue": chaos.settings.task_queue, "reason": "failed",
                    "error": {"type": "PermanentError", "message": "listed"},
                    "dead_lettered_at": item["dead_lettered_at"], "args": ["listed"],
                    "kwargs": {}}
    assert item["dead_lettered_at"].endswith("Z")
    assert all(i["reason"] == "failed" for i in first["items"])
    assert status_other == 200
    assert all(i["reason"] == "poison" for i in other["items"])
    assert await dead_letter_of(chaos.settings, task_id) is not None


async def test_listing_pages_through_next_until_every_dead_letter_was_seen_once(
    chaos: Chaos,
) -> None:
    for _ in range(3):
        await run_to_end(chaos.settings, "fail_permanently", ["paged"])
    total = len(await dead_letter_messages(chaos.settings))
    assert total >= 3
    seen: list[str] = []
    async with running_gateway(chaos.settings) as gw:
        url: str | None = f"{gw.url}/dead-letters?limit=2"
        while url is not None:
            async with gw.http.get(url) as resp:
                page = await resp.json()
            assert resp.status == 200, page
            assert len(page["items"]) <= 2
            seen.extend(str(i["task_id"]) for i in page["items"])
            url = f"{gw.url}{page['next']}" if "next" in page else None
    assert len(seen) == total
    assert len(set(seen)) == total


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"reason": "bored"}, 422, "invalid_arguments"),
    ({"limit": "0"}, 422, "invalid_arguments"),
    ({"limit": "many"}, 422, "invalid_arguments"),
    ({"after": "x"}, 422, "invalid_arguments"),
    ({"queue": "nope"}, 404, "queue_not_found"),
])
async def test_bad_listing_queries_get_the_contract_error_shape(
    chaos: Chaos, params: dict[str, str], status: int, code: str,
) -> None:
    async with running_gateway(chaos.settings) as gw:
        got, doc = await _list(gw, **params)
    assert got == status
    assert doc["error"]["code"] == code


async def test_replaying_a_task_that_failed_on_its_first_run_runs_it_again_with_the_same_id_and_it_succeeds(  # noqa: E501
    chaos: Chaos, tmp_path: Path,
) -> None:
    marker = str(tmp_path / "ran-once")
    async with running_gateway(chaos.settings) as gw, \
            gateway_publisher(chaos.settings) as pub:
        task_id = await submit(pub, chaos.settings, "fail_once", [marker])
        await gw.wait_state(task_id, {"dead_lettered"})
        await wait_dead_letter(chaos.settings, task_id)
        async with gw.ws(f"?task_id={task_id}") as ws:
            # first the latest known state: dead_lettered
            first = (await ws.receive_until(lambda f: f.get("type") == "event"))[-1]
            async with gw.http.post(f"{gw.url}/dead-letters/{task_id}/replay") as resp:
                replayed = await resp.json()
                assert resp.status == 202, replayed
            frames = await ws.receive_until(
                lambda f: f.get("type") == "event" and f.get("state") == "succeeded",
                timeout=60)
        doc = await gw.wait_state(task_id, {"succeeded"})
        async with gw.http.post(f"{gw.url}/dead-letters/{task_id}/replay") as again:
            again_doc = await again.json()
    assert first["state"] == "dead_lettered"
    assert replayed == {"task_id": task_id}
    assert [f["state"] for f in events_of(frames, task_id)][-2:] == ["started", "succeeded"]
    assert doc["result"] == "succeeded on a later run"
    assert doc["retries"] == 0
    assert await dead_letter_of(chaos.settings, task_id) is None  # removed from the DLQ
    assert again.status == 404
    assert again_doc["error"]["code"] == "dead_letter_not_found"


async def test_replaying_an_unknown_task_id_is_a_404(chaos: Chaos) -> None:
    async with running_gateway(chaos.settings) as gw:
        async with gw.http.post(f"{gw.url}/dead-letters/{uuid.uuid4()}/replay") as resp:
            doc = await resp.json()
    assert resp.status == 404
    assert doc["error"]["code"] == "dead_letter_not_found"


async def test_dead_letter_metrics_count_by_queue_and_reason_and_the_depth_gauge_matches_the_queue(
    chaos: Chaos,
) -> None:
    worker_before = await asyncio.to_thread(scrape, chaos.metrics_url)
    failed_before = metric_value(worker_before, "cargo_dead_lettered_total",
                                 queue=chaos.settings.task_queue, reason="failed") or 0.0
    limit_before = metric_value(worker_before, "cargo_dead_lettered_total",
                                queue=chaos.settings.task_queue, reason="delivery_limit") or 0.0
    await run_to_end(chaos.settings, "fail_permanently", ["counted"])
    await run_to_end(chaos.settings, "fail_permanently", ["counted"])
    await run_to_end(chaos.settings, "crash_worker", timeout=120)
    worker_after = await asyncio.to_thread(scrape, chaos.metrics_url)
    assert metric_value(worker_after, "cargo_dead_lettered_total",
                        queue=chaos.settings.task_queue, reason="failed") == failed_before + 2
    assert metric_value(worker_after, "cargo_dead_lettered_total", queue=chaos.settings.task_queue,
                        reason="delivery_limit") == limit_before + 1
    async with running_gateway(chaos.settings) as gw:
        async with gw.http.get(f"{gw.url}/metrics") as resp:
            text = await resp.text()
        depth = metric_value(text, "cargo_dead_letter_queue_depth",
                             queue=chaos.settings.task_queue)
    assert depth == len(await dead_letter_messages(chaos.settings, 10_000))


async def test_purging_needs_the_queue_and_empties_its_dead_letter_queue(chaos: Chaos) -> None:
    await run_to_end(chaos.settings, "fail_permanently", ["purged"])
    async with running_gateway(chaos.settings) as gw:
        async with gw.http.delete(f"{gw.url}/dead-letters") as missing:
            missing_doc = await missing.json()
        async with gw.http.delete(f"{gw.url}/dead-letters", params={"queue": "nope"}) as bad:
            bad_doc = await bad.json()
        expected = len(await dead_letter_messages(chaos.settings, 10_000))
        async with gw.http.delete(f"{gw.url}/dead-letters",
                                  params={"queue": chaos.settings.task_queue}) as resp:
            purged = await resp.json()
        _, after = await _list(gw)
    assert missing.status == 422
    assert missing_doc["error"]["code"] == "invalid_arguments"
    assert bad.status == 404
    assert bad_doc["error"]["code"] == "queue_not_found"
    assert resp.status == 200
    assert purged == {"purged": expected}
    assert expected >= 1
    assert after == {"items": []}
    assert await dead_letter_messages(chaos.settings) == []


def _cargoctl(gw_url: str, settings: Settings, *args: str,
              ) -> subprocess.CompletedProcess[str]:
    env = process_env(settings, CARGO_GATEWAY_URL=gw_url)
    return subprocess.run([str(BIN / "cargoctl"), "dead-letters", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


async def test_cargoctl_dead_letters_lists_replays_and_purges(
    chaos: Chaos, tmp_path: Path,
) -> None:
    marker = str(tmp_path / "ran-once")
    async with running_gateway(chaos.settings) as gw, \
            gateway_publisher(chaos.settings) as pub:
        task_id = await submit(pub, chaos.settings, "fail_once", [marker])
        await wait_dead_letter(chaos.settings, task_id)
        listed = await asyncio.to_thread(_cargoctl, gw.url, chaos.settings, "list",
                                         "--reason", "failed", "--all", "--output", "json")
        replayed = await asyncio.to_thread(_cargoctl, gw.url, chaos.settings, "replay", task_id)
        await gw.wait_state(task_id, {"succeeded"})
        missing = await asyncio.to_thread(_cargoctl, gw.url, chaos.settings, "replay", task_id)
        await run_to_end(chaos.settings, "fail_permanently", ["to purge"])
        purged = await asyncio.to_thread(_cargoctl, gw.url, chaos.settings, "purge",
                                         "--queue", chaos.settings.task_queue, "--yes")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert any(i["task_id"] == task_id and i["reason"] == "failed" for i in items)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == task_id
    assert missing.returncode == 1
    assert "dead_letter_not_found" in missing.stderr
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.startswith("purged ")
    assert int(purged.stdout.split()[1]) >= 1


async def test_the_dead_letter_queue_and_its_watch_queue_are_named_for_the_task_queue(
    chaos: Chaos,
) -> None:
    from broker.management import ManagementClient

    async with ManagementClient(chaos.settings.management_api) as api:
        names = {q["name"] for q in await api.list_queues(chaos.settings.vhost)}
    queue = chaos.settings.task_queue
    assert {dead_letter_queue_name(queue), f"{queue}.XQ.watch"} <= names
