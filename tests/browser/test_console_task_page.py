"""A task's page (#/tasks/<id>) in a real browser: timeline, progress, revoke."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import Rest, screenshot_path

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# How the timeline shows an event's time: the date, and the time to the millisecond.
FULL_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


async def test_a_running_task_shows_its_progress_and_is_revoked_from_its_page(
    page: Page, rest: Rest,
) -> None:
    await page.goto("/ui#/tasks")
    await expect(page.locator("#live-status")).to_have_attribute("data-live", "live")
    task_id = await rest.submit("sleep", 60, steps=60)
    await page.goto(f"/ui#/tasks/{task_id}")

    # It runs: the progress bar follows the task's {done, total} reports.
    state = page.locator("#task-state")
    await expect(state).to_have_attribute("data-state", "progress")
    bar = page.locator("#task-progress progress")
    await expect(bar).to_have_attribute("max", "60")
    await expect(bar).not_to_have_attribute("value", "1")  # it moved on: live updates
    timeline = page.locator("#timeline tbody tr")
    await expect(page.locator('#timeline tbody tr[data-state="started"]')).to_have_count(1)
    await expect(page.locator('#timeline tbody tr[data-state="progress"]').nth(1)).to_be_visible()
    await expect(page.locator("#timeline .time").first).to_have_text(
        FULL_TIMESTAMP)
    await page.screenshot(path=screenshot_path("task"), full_page=True)

    await page.get_by_role("button", name="Revoke task").click()
    await expect(state).to_have_attribute("data-state", "revoked")
    await expect(page.get_by_role("button", name="Revoke task")).to_have_count(0)
    await expect(timeline.last).to_have_attribute("data-state", "revoked")
    doc = await rest.wait_state(task_id, {"revoked"})
    assert doc["state"] == "revoked"
