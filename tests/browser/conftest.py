"""The console in a real browser: Debian's Chromium driven by Playwright, against a real
``cargoctl gateway`` process, a real Celery worker and the real RabbitMQ.

One vhost, one worker (the chaos worker: the built-in tasks plus the failing ones of
``tests.support.chaos_tasks``, for dead letters), one console gateway and one browser
for the session's browser tests (package scope: they stop once this package's tests
are done, rather than idling through the rest of the suite), and a fresh browser
context (no storage, no token) per test. Playwright's async API runs on
pytest-asyncio's session loop, where the browser lives; every async test here runs on
that loop (``pytest.mark.asyncio(loop_scope="session")``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    async_playwright,
    expect,
)

from broker.settings import Settings, load_settings
from tests.browser.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    UI_TIMEOUT_MS,
    VIEWPORT,
    GatewayProcess,
    Rest,
)
from tests.support.processes import Proc, start_chaos_worker
from tests.support.rabbit import base_url, broker_problem, private_vhost


@dataclass
class Stack:
    settings: Settings
    worker: Proc
    gateway: GatewayProcess


@pytest.fixture(scope="package")
def console_stack() -> Iterator[Stack]:
    """A private vhost, a real worker offering the built-in and the failing tasks, and
    the gateway that serves the console (no auth)."""
    problem = broker_problem(load_settings({"RABBITMQ_URL": base_url()}))
    if problem:
        pytest.fail(problem, pytrace=False)
    with private_vhost("cargo-test-console") as settings:
        worker = start_chaos_worker(settings, "console-worker", concurrency=2)
        gateway = GatewayProcess(settings, "console-gateway")
        try:
            gateway.start()
            yield Stack(settings, worker, gateway)
        finally:
            gateway.stop()
            worker.stop()


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the console's browser tests drive Debian's "
                    "Chromium; install it with scripts/browser.sh (scripts/test.sh runs it)",
                    pytrace=False)
    # expect()'s own default is 5 s: too short on a busy two-core machine.
    expect.set_options(timeout=UI_TIMEOUT_MS)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


class PageWatch:
    """What a page did that a test must not let pass: a script error, a request to
    another origin (the console works offline: everything comes from the gateway)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.errors: list[str] = []
        self.foreign: list[str] = []

    def on_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob"):
            return
        if parts.netloc != urlsplit(self.origin).netloc:
            self.foreign.append(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.errors.append(f"CSP: {message.text}")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")


@contextlib.asynccontextmanager
async def watched_page(browser: Browser, origin: str) -> AsyncIterator[Page]:
    """A fresh browser context (no storage, no token) on ``origin``; on leaving, the page
    must have had no script error, no CSP violation and no request to another origin."""
    context = await browser.new_context(viewport=VIEWPORT, base_url=origin)
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = await context.new_page()
    watch = PageWatch(origin)
    page.on("request", watch.on_request)
    page.on("console", watch.on_console)
    page.on("pageerror", watch.on_page_error)
    try:
        yield page
    finally:
        await context.close()
    assert not watch.errors, watch.errors
    assert not watch.foreign, f"requests to another origin: {watch.foreign}"


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, console_stack: Stack) -> AsyncIterator[Page]:
    """A fresh page on the console gateway's origin (``watched_page``)."""
    async with watched_page(browser, console_stack.gateway.url) as page:
        yield page


@pytest_asyncio.fixture(loop_scope="session")
async def rest(console_stack: Stack) -> AsyncIterator[Rest]:
    async with aiohttp.ClientSession() as http:
        yield Rest(http, console_stack.gateway.url)
