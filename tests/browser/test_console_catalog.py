"""The catalog page (#/catalog) in a real browser: schemas and generated submit forms."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import Rest, screenshot_path

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_the_catalog_form_puts_each_422_detail_by_its_field_and_a_good_one_opens_its_task(
    page: Page, rest: Rest,
) -> None:
    await page.goto("/ui#/catalog")
    await page.locator('#catalog-list a[data-task="sleep"]').click()
    await expect(page).to_have_url(re.compile(r"#/catalog/sleep$"))
    await expect(page.locator("#catalog-task-name")).to_have_text("sleep")
    await page.locator("#catalog-schema summary").click()
    await expect(page.locator("#catalog-schema pre")).to_contain_text('"x-cargo-positional"')
    # The form comes from the schema: a required number, an integer with its default.
    seconds, steps = page.locator("#arg-seconds"), page.locator("#arg-steps")
    await expect(seconds).to_have_attribute("aria-required", "true")
    await expect(steps).to_have_value("1")

    # Out of range, both: the gateway's 422 says so, and each detail sits by its field.
    await seconds.fill("5000")
    await steps.fill("0")
    await page.get_by_role("button", name="Submit sleep").click()
    seconds_error = page.locator('[data-error-for="seconds"]')
    steps_error = page.locator('[data-error-for="steps"]')
    await expect(seconds_error).to_be_visible()
    await expect(seconds_error).to_contain_text("less than or equal to 3600")
    await expect(steps_error).to_contain_text("greater than or equal to 1")
    await expect(seconds_error).not_to_contain_text("greater than")
    await expect(seconds).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#submit-error")).to_contain_text("see the fields marked above")
    await expect(page).to_have_url(re.compile(r"#/catalog/sleep$"))
    await page.screenshot(path=screenshot_path("catalog"), full_page=True)

    # Fixed: the submission is accepted and the new task's live page opens.
    await seconds.fill("0.4")
    await steps.fill("4")
    await page.get_by_role("button", name="Submit sleep").click()
    await expect(page).to_have_url(re.compile(r"#/tasks/[0-9a-f-]{36}$"))
    task_id = page.url.rsplit("/", 1)[1]
    await expect(page.locator("#task-id")).to_have_text(task_id)
    await expect(page.locator("#task-state")).to_have_attribute("data-state", "succeeded")
    await expect(page.locator("#task-progress progress")).to_have_attribute("value", "4")
    await expect(page.locator("#task-result pre")).to_have_text("0.4")
    doc = await rest.wait_state(task_id, {"succeeded"})
    assert doc["name"] == "sleep"
    assert doc["result"] == 0.4


async def test_a_value_the_form_cannot_send_is_refused_beside_its_field_without_a_request(
    page: Page,
) -> None:
    await page.goto("/ui#/catalog/always_fail")
    message = page.locator("#arg-message")
    await expect(message).to_have_value("always fails")  # the schema's default
    submits: list[str] = []
    page.on("request", lambda r: submits.append(r.url) if r.method == "POST" else None)
    # A JSON option that does not parse is caught before anything is sent.
    await page.locator("#submit-form details.options summary").click()
    await page.fill("#arg-option-countdown", "")
    await page.locator("#arg-option-countdown").press_sequentially("-")
    await page.get_by_role("button", name="Submit always_fail").click()
    await expect(page.locator('[data-error-for="countdown"]')).to_contain_text("not a number")
    assert submits == []
