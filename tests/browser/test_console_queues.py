"""The queues and workers page (#/queues) in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import Rest, screenshot_path

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# RabbitMQ refreshes its statistics every 5 s and the page re-reads them every 5 s.
STATS_TIMEOUT_MS = 60_000


async def test_the_queues_page_shows_depth_consumers_dead_letters_and_the_live_worker(
    page: Page, rest: Rest,
) -> None:
    # A dead letter, then a backlog of about 30 s: six 10 s naps, two at a time (the
    # worker has two children).
    rejected = await rest.submit("reject_self")
    await rest.wait_state(rejected, {"dead_lettered"})
    sleepers = [await rest.submit("sleep", 10) for _ in range(6)]
    try:
        await page.goto("/ui#/queues")
        queue = page.locator('#queues-table tr[data-queue="cargo"]')
        await expect(queue).to_be_visible()
        await expect(queue.locator('[data-field="consumers"]')).to_have_text("1")
        await expect(queue).to_contain_text("cargo.XQ")
        # Depth is ready + unacked: the sleeps, running or waiting.
        await expect(queue.locator('[data-field="depth"]')).to_have_text(
            re.compile(r"^[1-9]\d*$"), timeout=STATS_TIMEOUT_MS)
        await expect(queue.locator('[data-field="dead-letter-ready"]')).to_have_text(
            re.compile(r"^[1-9]\d*$"), timeout=STATS_TIMEOUT_MS)
        await page.screenshot(path=screenshot_path("queues"), full_page=True)
        # One reading of the row (the page redraws it every few seconds).
        figures = await queue.evaluate(
            "row => Object.fromEntries([...row.querySelectorAll('[data-field]')]"
            ".map(cell => [cell.dataset.field, Number(cell.textContent)]))")
        assert figures["depth"] == figures["ready"] + figures["unacked"]

        worker = page.locator("#workers-table tr[data-worker^='console-worker-']")
        await expect(worker).to_have_count(1)
        await expect(worker.locator('[data-field="concurrency"]')).to_have_text("2")
        await expect(worker.locator('[data-field="processes"]')).to_have_text("3")
        await expect(worker.locator('[data-field="memory"]')).to_have_text(
            re.compile(r"^\d+(\.\d)? (MiB|GiB)$"))
        await expect(worker).to_contain_text("cargo")
        await expect(page.locator("#queues-updated")).to_contain_text("Updated")
    finally:
        for task_id in sleepers:  # leave no backlog behind for the next test
            await rest.wait_state(task_id)
