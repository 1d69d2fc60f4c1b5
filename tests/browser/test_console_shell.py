"""The console's shell as HTTP serves it (no browser): open, offline, under a strict CSP."""

from __future__ import annotations

import re
from importlib import resources

import aiohttp
import pytest

from gateway.auth import is_open
from gateway.console_routes import ConsoleAssets
from tests.browser.conftest import Stack

pytestmark = pytest.mark.integration

# Anything that would make the browser fetch from elsewhere: absolute or protocol-relative
# URLs in markup, styles or scripts.
EXTERNAL = re.compile(
    r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[/"'\s)]|@import|url\(\s*['"]?(?:https?:)?//""",
    re.IGNORECASE)


def test_every_console_file_is_in_the_package_and_none_loads_anything_from_elsewhere() -> None:
    assets = ConsoleAssets.from_package()
    assert {"index.html", "console.css", "favicon.svg", "js/app.js",
            "js/views/tasks.js", "js/schema-form.js"} <= set(assets.paths)
    root = resources.files("gateway.console")
    for path in assets.paths:
        # An XML namespace is a name, not something fetched.
        text = re.sub(r'xmlns="[^"]*"', "", root.joinpath(path).read_text(encoding="utf-8"))
        assert not EXTERNAL.search(text), f"{path} refers to another site: " \
                                          f"{EXTERNAL.search(text)}"
        for target in re.findall(r"""\bfrom\s+["']([^"']+)["']""", text):
            assert target.startswith("./") or target.startswith("../"), (path, target)


def test_the_console_paths_and_nothing_else_are_open_without_the_token() -> None:
    assert is_open("/ui")
    assert is_open("/ui/js/app.js")
    assert not is_open("/uix")
    assert not is_open("/ui-data")
    assert not is_open("/tasks/abc")
    assert not is_open("/dead-letters")


@pytest.mark.asyncio(loop_scope="session")
async def test_the_shell_is_served_with_a_strict_content_security_policy_and_revalidates(
    console_stack: Stack,
) -> None:
    url = console_stack.gateway.url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/ui") as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            html = await resp.text()
            policy = resp.headers["Content-Security-Policy"]
            etag = resp.headers["ETag"]
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'"  # no inline script, no eval
        assert directives["style-src"] == "'self'"
        host = url.removeprefix("http://")
        assert directives["connect-src"] == f"'self' ws://{host} wss://{host}"
        assert directives["frame-ancestors"] == "'none'"

        for asset in re.findall(r'(?:src|href)="(ui/[^"]+)"', html):
            async with http.get(f"{url}/{asset}") as resp:
                assert resp.status == 200, asset
        async with http.get(f"{url}/ui/js/app.js") as resp:
            assert resp.content_type == "text/javascript"
        async with http.get(f"{url}/ui", headers={"If-None-Match": etag}) as resp:
            assert resp.status == 304
        async with http.get(f"{url}/ui/", allow_redirects=False) as resp:
            assert resp.status == 308
            assert resp.headers["Location"] == "../ui"
        for missing in ("/ui/nothing.js", "/ui/..%2Fconsole_routes.py", "/ui/__init__.py"):
            async with http.get(f"{url}{missing}") as resp:
                assert resp.status == 404, missing
                assert (await resp.json())["error"]["code"] == "not_found"
