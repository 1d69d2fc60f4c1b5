"""With ``CARGO_AUTH_TOKEN`` set, the console asks for the token and shows nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Response, expect

from tests.browser.conftest import Stack, watched_page
from tests.browser.support import GatewayProcess, Rest, screenshot_path

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

TOKEN = "console-browser-test-token-0123456789"


@pytest_asyncio.fixture(loop_scope="session")
async def guarded(console_stack: Stack) -> AsyncIterator[GatewayProcess]:
    """A second gateway on the same vhost, with auth on."""
    gateway = GatewayProcess(console_stack.settings, "console-guarded", token=TOKEN)
    await asyncio.to_thread(gateway.start)
    try:
        yield gateway
    finally:
        await asyncio.to_thread(gateway.stop)


@pytest_asyncio.fixture(loop_scope="session")
async def guarded_page(browser: Browser, guarded: GatewayProcess) -> AsyncIterator[Page]:
    async with watched_page(browser, guarded.url) as page:
        yield page


async def expect_locked(page: Page) -> None:
    """Only the prompt: no navigation, no live feed, nothing else in the page's body."""
    await expect(page.get_by_test_id("token-prompt")).to_be_visible()
    await expect(page.locator("#main > *")).to_have_count(1)
    await expect(page.locator("#nav")).to_be_hidden()
    await expect(page.locator("#live-status")).to_be_hidden()
    await expect(page.locator("table")).to_have_count(0)


async def test_with_auth_on_only_the_token_prompt_shows_until_a_token_works_and_a_401_brings_it_up(
    guarded_page: Page, guarded: GatewayProcess,
) -> None:
    page = guarded_page
    api_answers: list[int] = []

    def record(response: Response) -> None:
        if not urlsplit(response.url).path.startswith("/ui"):
            api_answers.append(response.status)

    page.on("response", record)
    await page.goto("/ui#/dead-letters")
    await expect_locked(page)
    await page.screenshot(path=screenshot_path("token"))
    assert api_answers
    assert set(api_answers) == {401}

    await page.fill("#token", "not-the-token-but-long-enough")
    await page.get_by_role("button", name="Unlock").click()
    await expect(page.get_by_test_id("token-prompt")).to_contain_text("refused")
    await expect_locked(page)
    assert set(api_answers) == {401}

    await page.fill("#token", TOKEN)
    await page.get_by_role("button", name="Unlock").click()
    await expect(page.locator("#nav")).to_be_visible()
    await expect(page.locator("#dl-table")).to_be_visible()  # the page it was asked for
    # The live feed runs with the token too (?token= on the WebSocket).
    await expect(page.locator("#live-status")).to_have_attribute("data-live", "live")
    await page.locator('#nav a[data-nav="tasks"]').click()
    async with aiohttp.ClientSession() as http:
        task_id = await Rest(http, guarded.url, TOKEN).submit("calculate_distance", 5, 12)
    row = page.locator(f'#task-rows tr[data-task-id="{task_id}"]')
    await expect(row).to_have_attribute("data-state", "succeeded")
    assert await page.evaluate("sessionStorage.getItem('cargo.console.token')") == TOKEN

    # The token stops working (rotated): the next call's 401 locks the console again.
    await page.evaluate("sessionStorage.setItem('cargo.console.token', 'rotated-away-token-0000')")
    await page.locator('#nav a[data-nav="catalog"]').click()
    await expect_locked(page)
    await expect(page.get_by_test_id("token-prompt")).to_contain_text("refused")
    await expect(row).to_have_count(0)
