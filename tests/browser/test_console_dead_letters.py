"""The dead-letters page (#/dead-letters) in a real browser: list, replay, purge."""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import Rest, screenshot_path
from tests.support.processes import LOGS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_a_dead_letter_replayed_from_the_console_runs_again_and_succeeds(
    page: Page, rest: Rest,
) -> None:
    # fail_once fails while its marker file is missing (creating it) and succeeds after.
    LOGS.mkdir(parents=True, exist_ok=True)
    marker = LOGS / f"console-fail-once-{uuid.uuid4().hex}"
    try:
        task_id = await rest.submit("fail_once", str(marker))
        # Another dead letter beside it (for the docs' screenshot), which stays.
        other = await rest.submit("fail_permanently", "the input cannot be parsed")
        await rest.wait_state(task_id, {"dead_lettered"})
        await rest.wait_state(other, {"dead_lettered"})

        await page.goto("/ui#/dead-letters")
        row = page.locator(f'#dl-rows tr[data-task-id="{task_id}"]')
        await expect(row).to_be_visible()
        await expect(row).to_have_attribute("data-reason", "failed")
        await expect(row).to_contain_text("RuntimeError: the first run fails")
        await expect(row).to_contain_text(str(marker))  # its arguments
        await page.screenshot(path=screenshot_path("dead-letters"), full_page=True)

        await row.get_by_role("button", name="Replay").click()
        await expect(row).to_have_attribute("data-replayed", "true")
        await row.get_by_role("link", name="follow the task").click()
        await expect(page.locator("#task-id")).to_have_text(task_id)
        await expect(page.locator("#task-state")).to_have_attribute("data-state", "succeeded")
        await expect(page.locator("#task-result pre")).to_have_text('"succeeded on a later run"')
        # It ran again: a new start is in the console's timeline, and the gateway agrees.
        await expect(page.locator('#timeline tbody tr[data-state="started"]')).to_have_count(1)
        doc = await rest.wait_state(task_id, {"succeeded"})
        assert doc["result"] == "succeeded on a later run"
        remaining = await rest.dead_letter_ids()
        assert task_id not in remaining
        assert other in remaining
    finally:
        marker.unlink(missing_ok=True)


async def test_purging_a_queue_asks_first_and_cancel_keeps_its_dead_letters(
    page: Page, rest: Rest,
) -> None:
    rejected = await rest.submit("reject_self")
    await rest.wait_state(rejected, {"dead_lettered"})

    await page.goto("/ui#/dead-letters")
    row = page.locator(f'#dl-rows tr[data-task-id="{rejected}"]')
    await expect(row).to_have_attribute("data-reason", "rejected")
    # Filters: by reason (a reason it does not have hides it), then its queue.
    await page.select_option("#dl-reason", "time_limit")
    await expect(row).to_have_count(0)
    await page.select_option("#dl-reason", "rejected")
    await expect(row).to_be_visible()
    purge = page.get_by_role("button", name="Purge…")
    await expect(purge).to_be_disabled()  # purging needs one queue chosen
    await page.select_option("#dl-queue", "cargo")
    await expect(row).to_be_visible()

    await purge.click()
    await expect(page.locator("#purge-question")).to_contain_text("queue cargo")
    await page.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#purge-question")).to_have_count(0)
    await expect(row).to_be_visible()
    assert rejected in await rest.dead_letter_ids()

    await purge.click()
    await page.get_by_role("button", name="Purge cargo").click()
    await expect(page.locator("#dl-notice")).to_contain_text("Purged")
    await expect(row).to_have_count(0)
    assert rejected not in await rest.dead_letter_ids()
