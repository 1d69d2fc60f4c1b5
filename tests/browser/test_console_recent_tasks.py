"""The console opens on the recent tasks (GET /tasks), merged with the live events."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Locator, Page, Route, WebSocket, expect

from tests.browser.support import Rest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def row(page: Page, task_id: str) -> Locator:
    return page.locator(f'#task-rows tr[data-task-id="{task_id}"]')


def is_task_list(url: str) -> bool:
    """The console's GET /tasks (not a task's own /tasks/<id>)."""
    return urlsplit(url).path == "/tasks"


def record_events(page: Page) -> list[dict[str, Any]]:
    """Every event frame the page's WebSockets receive, as they arrive."""
    events: list[dict[str, Any]] = []

    def watch(socket: WebSocket) -> None:
        def received(payload: str | bytes) -> None:
            frame = json.loads(payload)
            if frame.get("type") == "event":
                events.append(frame)
        socket.on("framereceived", received)

    page.on("websocket", watch)
    return events


async def test_the_console_opens_on_tasks_submitted_before_it_was_opened(
    page: Page, rest: Rest,
) -> None:
    earlier = await rest.submit("calculate_distance", 3, 4)
    await rest.wait_state(earlier, {"succeeded"})
    later = await rest.submit("sleep", 0.2, steps=2)
    await rest.wait_state(later, {"succeeded"})
    events = record_events(page)

    await page.goto("/ui#/tasks")
    await expect(page.locator("#live-status")).to_have_attribute("data-live", "live")
    await expect(page.locator("#recent-status")).to_have_attribute("data-recent", "loaded")

    await expect(row(page, earlier)).to_have_attribute("data-state", "succeeded")
    await expect(row(page, later)).to_have_attribute("data-state", "succeeded")
    await expect(row(page, earlier).locator(".task-name")).to_have_text("calculate_distance")
    await expect(row(page, later).locator("progress")).to_have_attribute("value", "2")
    # The most recently updated first.
    shown = await page.locator("#task-rows tr").evaluate_all(
        "rows => rows.map(r => r.dataset.taskId)")
    assert shown.index(later) < shown.index(earlier)
    # The rows came from the list: no event of these tasks reached the page.
    assert not [e for e in events if e["task_id"] in (earlier, later)]
    await expect(page.locator("#tasks-empty")).to_be_hidden()


async def test_a_list_that_arrives_after_a_newer_live_event_does_not_roll_the_row_back(
    page: Page, rest: Rest,
) -> None:
    """The list is read while the task runs and reaches the page only after the task's
    ``revoked`` event did (held back on the way, as a slow response would be): the row
    stays ``revoked``."""
    running = await rest.submit("sleep", 600)
    await rest.wait_state(running, {"started", "progress"})
    listed: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    release = asyncio.Event()

    async def hold_the_first_list(route: Route) -> None:
        if listed.done():
            await route.continue_()
            return
        response = await route.fetch()  # the real gateway's answer, read now
        listed.set_result(await response.json())
        await release.wait()
        await route.fulfill(response=response)

    await page.route(is_task_list, hold_the_first_list)
    try:
        await page.goto("/ui#/tasks")
        await expect(page.locator("#live-status")).to_have_attribute("data-live", "live")
        doc = await asyncio.wait_for(listed, 30)
        item = next(i for i in doc["items"] if i["task_id"] == running)
        assert item["state"] in ("started", "progress")

        status, _ = await rest.call("DELETE", f"/tasks/{running}")
        assert status == 202
        await expect(row(page, running)).to_have_attribute("data-state", "revoked")
    finally:
        release.set()
    await expect(page.locator("#recent-status")).to_have_attribute("data-loads", "1")
    # The older list was applied and changed nothing.
    await expect(row(page, running)).to_have_attribute("data-state", "revoked")
    await expect(row(page, running)).to_have_count(1)


async def test_a_list_that_fails_to_load_says_so_and_loads_again_on_request(
    page: Page, rest: Rest,
) -> None:
    done = await rest.submit("calculate_distance", 5, 12)
    await rest.wait_state(done, {"succeeded"})
    attempts = 0

    async def fail_the_first_list(route: Route) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await route.abort("connectionreset")
        else:
            await route.continue_()

    await page.route(is_task_list, fail_the_first_list)
    await page.goto("/ui#/tasks")
    status = page.locator("#recent-status")
    await expect(status).to_have_attribute("data-recent", "failed")
    await expect(status.get_by_role("alert")).to_contain_text(
        "Could not load the recent tasks")
    await expect(row(page, done)).to_have_count(0)

    await status.get_by_role("button", name="Load again").click()
    await expect(status).to_have_attribute("data-recent", "loaded")
    await expect(status.get_by_role("alert")).to_have_count(0)
    await expect(row(page, done)).to_have_attribute("data-state", "succeeded")
    assert attempts == 2


# The store's merge rule, on crafted frames in the browser (pure logic: no gateway data).
MERGE_SCRIPT = """async () => {
  const {TaskStore, summarize} = await import(
    new URL("ui/js/task-store.js", document.baseURI).href);
  const store = new TaskStore();
  const ev = (id, state, cursor, ts, extra = {}) =>
    ({type: "event", task_id: id, name: "job", state, cursor, ts, ...extra});
  const item = (id, state, cursor, updated_at, extra = {}) =>
    ({task_id: id, name: "job", state, retries: 0, submitted_at: updated_at,
      updated_at, ...(cursor ? {cursor} : {}), ...extra});
  const t = (s) => `2026-01-01T00:00:${String(s).padStart(2, "0")}.000Z`;

  store.apply(ev("live-newer", "succeeded", "900", t(9), {result: 1}));
  store.apply(ev("list-newer", "started", "100", t(1)));
  store.apply(ev("local-queued", "started", "300", t(3)));
  store.apply(ev("same", "succeeded", "400", t(4)));
  const changed = store.applyList([
    item("list-newer", "progress", "800", t(8), {progress: {done: 2, total: 4}}),
    item("live-newer", "started", "500", t(5)),
    item("local-queued", "queued", null, t(2)),
    item("same", "succeeded", "400", t(4), {result: 2}),
    item("only-listed", "dead_lettered", "200", t(2), {reason: "failed"}),
  ]);
  const listedProgress = summarize(store.get("list-newer"));
  // A second, older list of the same tasks changes nothing.
  const again = store.applyList([item("list-newer", "started", "100", t(1)),
                                 item("only-listed", "failed", "150", t(1))]);
  // Then live events newer than the list.
  store.apply(ev("list-newer", "succeeded", "950", t(10), {result: 3}));
  const state = (id) => summarize(store.get(id)).state;
  return {
    changed, again,
    liveNewer: state("live-newer"),
    listedProgress,
    listNewer: state("list-newer"),
    localQueued: state("local-queued"),
    same: state("same"),
    onlyListed: state("only-listed"),
    cursor: store.cursor,
    order: [...store.tasks.values()].sort((a, b) => b.order - a.order).map((t) => t.id),
  };
}"""


async def test_the_task_store_shows_the_newer_of_a_listed_state_and_a_live_event(
    page: Page,
) -> None:
    await page.goto("/ui#/tasks")
    await expect(page.locator("#live-status")).to_have_attribute("data-live", "live")
    result = await page.evaluate(MERGE_SCRIPT)
    assert result["liveNewer"] == "succeeded"   # the list's older `started` is ignored
    # The list's `progress` over the event `started`, then the next event over the list.
    assert result["listedProgress"] == {"state": "progress", "ts": "2026-01-01T00:00:08.000Z",
                                        "progress": {"done": 2, "total": 4}, "retries": 0}
    assert result["listNewer"] == "succeeded"
    assert result["localQueued"] == "started"   # a listed `queued` not yet on the stream
    assert result["same"] == "succeeded"
    assert result["onlyListed"] == "dead_lettered"
    # Shown from the list: list-newer, only-listed, and `same` (its event is in the
    # listed state); the others' events were newer. The older second list changed nothing.
    assert result["changed"] == 3
    assert result["again"] == 0
    # Listed cursors never move the `since` of a reconnect: only events received do.
    assert result["cursor"] == "950"
    # Tasks heard of live on top, newest first; the listed-only one below them.
    assert result["order"] == ["same", "local-queued", "list-newer", "live-newer",
                               "only-listed"]
