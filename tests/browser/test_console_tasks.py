"""The console's live task table (#/tasks) in a real browser."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from playwright.async_api import Locator, Page, WebSocket, expect

from tests.browser.conftest import Stack
from tests.browser.support import GatewayProcess, Rest, screenshot_path
from tests.support.eventually import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# The reconnect test submits one task every SUBMIT_PAUSE seconds until it has what it
# needs, and stops by itself after MAX_SUBMISSIONS whatever happens.
SUBMIT_PAUSE = 0.1
MAX_SUBMISSIONS = 1500


async def open_tasks(page: Page) -> None:
    await page.goto("/ui#/tasks")
    await expect(page.locator("#live-status")).to_have_attribute("data-live", "live")


def row(page: Page, task_id: str) -> Locator:
    return page.locator(f'#task-rows tr[data-task-id="{task_id}"]')


async def test_a_task_submitted_over_rest_appears_and_turns_succeeded_without_a_reload(
    page: Page, rest: Rest,
) -> None:
    await open_tasks(page)
    # A reload would drop this mark: it proves the row came over the WebSocket.
    await page.evaluate("window.loadedOnce = true")

    distance = await rest.submit("calculate_distance", 3, 4)
    stepped = await rest.submit("sleep", 0.6, steps=3)

    for task_id in (distance, stepped):
        await expect(row(page, task_id)).to_be_visible()
        await expect(row(page, task_id)).to_have_attribute("data-state", "succeeded")
    await expect(row(page, distance).locator(".task-name")).to_have_text("calculate_distance")
    await expect(row(page, stepped).locator("progress")).to_have_attribute("value", "3")
    assert await page.evaluate("window.loadedOnce") is True
    assert (await rest.task(distance))[1]["result"] == 5.0


async def test_the_task_table_filters_by_name_and_state_and_finds_a_task_by_id(
    page: Page, rest: Rest,
) -> None:
    await open_tasks(page)
    distance = await rest.submit("calculate_distance", 6, 8)
    doomed = await rest.submit("fail_permanently", "no luck")
    napper = await rest.submit("sleep", 0.1)
    await expect(row(page, distance)).to_have_attribute("data-state", "succeeded")
    await expect(row(page, doomed)).to_have_attribute("data-state", "dead_lettered")
    await expect(row(page, napper)).to_have_attribute("data-state", "succeeded")
    await page.screenshot(path=screenshot_path("tasks"))

    await page.select_option("#filter-name", "calculate_distance")
    await expect(row(page, distance)).to_be_visible()
    await expect(row(page, doomed)).to_be_hidden()
    await expect(row(page, napper)).to_be_hidden()

    await page.select_option("#filter-name", "")
    await page.select_option("#filter-state", "dead_lettered")
    await expect(row(page, doomed)).to_be_visible()
    await expect(row(page, distance)).to_be_hidden()
    await expect(row(page, napper)).to_be_hidden()

    await page.select_option("#filter-state", "")
    await page.fill("#filter-id", napper[4:18])  # part of the id
    await expect(row(page, napper)).to_be_visible()
    await expect(row(page, distance)).to_be_hidden()
    await expect(row(page, doomed)).to_be_hidden()

    # A whole id opens that task's page.
    await page.fill("#filter-id", doomed)
    await page.get_by_role("button", name="Open task").click()
    await expect(page).to_have_url(re.compile(rf"/ui#/tasks/{doomed}$"))
    await expect(page.locator("#task-state")).to_have_attribute("data-state", "dead_lettered")
    await expect(page.locator("#task-reason")).to_contain_text("failed")
    await expect(page.locator("#task-error")).to_contain_text("no luck")


@pytest.mark.timeout(360)  # two gateway starts and a stop, on a slow machine
async def test_a_websocket_dropped_by_the_server_reconnects_and_the_table_stays_complete(
    page: Page, rest: Rest, console_stack: Stack,
) -> None:
    """The console's gateway process is stopped and started again on the same port while
    tasks keep being submitted to a second gateway: the page reconnects with ``since``,
    lists the recent tasks again once resubscribed, and shows every task exactly once,
    each in its final state."""
    subscriptions: list[dict[str, Any]] = []
    # "subscribed" for each subscription the gateway confirmed, "list" for each GET /tasks.
    sequence: list[str] = []

    def watch(socket: WebSocket) -> None:
        def sent(payload: str | bytes) -> None:
            frame = json.loads(payload)
            if frame.get("op") == "subscribe":
                subscriptions.append(frame)

        def received(payload: str | bytes) -> None:
            if json.loads(payload).get("type") == "subscribed":
                sequence.append("subscribed")
        socket.on("framesent", sent)
        socket.on("framereceived", received)

    page.on("websocket", watch)
    page.on("request", lambda request: sequence.append("list")
            if urlsplit(request.url).path == "/tasks" else None)
    status = page.locator("#live-status")
    replica = GatewayProcess(console_stack.settings, "console-replica")
    await asyncio.to_thread(replica.start)
    submitted: list[str] = []
    enough = asyncio.Event()
    try:
        async with aiohttp.ClientSession() as http:
            other = Rest(http, replica.url)

            async def keep_submitting() -> None:
                for i in range(MAX_SUBMISSIONS):  # bounded, whatever happens
                    if enough.is_set():
                        return
                    submitted.append(await other.submit("calculate_distance", i, 1))
                    await asyncio.sleep(SUBMIT_PAUSE)

            await open_tasks(page)
            submitter = asyncio.create_task(keep_submitting())
            try:
                await eventually(lambda: _count_at_least(submitted, 5), 60, "5 submissions")
                await expect(row(page, submitted[0])).to_be_visible()

                # The server side goes away for real: the process exits.
                await asyncio.to_thread(console_stack.gateway.stop)
                await expect(status).to_have_attribute("data-live", "reconnecting")
                down_from = len(submitted)
                await eventually(lambda: _count_at_least(submitted, down_from + 10), 60,
                                 "10 submissions while the gateway is down")

                await asyncio.to_thread(console_stack.gateway.start)
                await expect(status).to_have_attribute("data-live", "live")
                back_at = len(submitted)
                await eventually(lambda: _count_at_least(submitted, back_at + 5), 60,
                                 "5 submissions after the gateway is back")
            finally:
                enough.set()
                await submitter
            for task_id in submitted:
                await other.wait_state(task_id, {"succeeded"})
    finally:
        await asyncio.to_thread(replica.stop)

    # Tasks from before, during and after the gap; each once, each succeeded.
    assert down_from < back_at < len(submitted)
    for task_id in submitted:
        await expect(row(page, task_id)).to_have_count(1)
        await expect(row(page, task_id)).to_have_attribute("data-state", "succeeded")
    shown = await page.locator("#task-rows tr").evaluate_all(
        "rows => rows.map(r => r.dataset.taskId)")
    assert len(shown) == len(set(shown)), "a task is shown twice"
    # The first subscription started from now; the one after the drop resumed at a cursor.
    assert len(subscriptions) >= 2
    assert "since" not in subscriptions[0]
    assert subscriptions[-1]["all"] is True
    assert subscriptions[-1]["since"].isdigit()
    # Each confirmed subscription, the first and the one after the reconnect, was followed
    # by a new list of the recent tasks, merged without showing any task twice (above).
    confirmed = sequence.count("subscribed")
    assert confirmed >= 2
    assert sequence == ["subscribed", "list"] * confirmed
    await expect(page.locator("#recent-status")).to_have_attribute("data-loads", str(confirmed))
    # A task that ran while the console was away has each step once in its timeline.
    await page.goto(f"/ui#/tasks/{submitted[down_from + 5]}")
    await expect(page.locator("#task-state")).to_have_attribute("data-state", "succeeded")
    states = await page.locator("#timeline tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.state)")
    # (Its ``queued`` is missing when the gateway's announcement reached the stream after
    # the worker's ``started``: the gateways drop such a stale event.)
    assert states in (["queued", "started", "succeeded"], ["started", "succeeded"])


async def _count_at_least(items: list[str], count: int) -> bool:
    return len(items) >= count
