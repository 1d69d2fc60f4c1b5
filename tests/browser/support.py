"""What the console's browser tests drive: real ``cargoctl gateway`` processes, the REST API
as a client uses it, the browser's launch settings, and the screenshots for the docs."""

from __future__ import annotations

import os
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Collection
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import ViewportSize

from broker.settings import Settings
from tests.support.eventually import eventually, eventually_sync
from tests.support.processes import BIN, ROOT, Proc, process_env

CHROMIUM = Path("/usr/bin/chromium")
# This machine's closed network refuses Chromium's background connections (updates,
# sync, field trials, QUIC probes): none is started, so no test waits on one.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
SCREENSHOTS = ROOT / "docs" / "images"
# Generous: the machine is small and shared; every wait ends as soon as its condition holds.
UI_TIMEOUT_MS = 30_000
TERMINAL = frozenset({"succeeded", "dead_lettered", "revoked"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """``cargoctl gateway`` on a port of its own, which it keeps across restarts (the
    console's page stays on that origin while the process behind it is replaced)."""

    def __init__(self, settings: Settings, name: str, token: str | None = None) -> None:
        self.settings = settings
        self.name = name
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None

    def start(self, timeout: float = 60) -> None:
        extra = {"CARGO_AUTH_TOKEN": self.token} if self.token else {}
        self.proc = Proc(self.name, [str(BIN / "cargoctl"), "gateway", "--host", "127.0.0.1",
                                     "--port", str(self.port)],
                         process_env(self.settings, **extra))
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        proc = self.proc

        def readyz() -> str:
            if not proc.alive():
                raise RuntimeError(f"gateway exited:\n{proc.output()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=5) as resp:
                    return str(resp.status)
            except urllib.error.HTTPError as exc:
                return f"{exc.code}: {exc.read()[:500]!r}"

        # OSError: not listening yet.
        eventually_sync(readyz, timeout,
                        lambda: f"the gateway ready:\n{proc.output()[-3000:]}",
                        until=lambda answer: answer == "200", ignoring=(OSError,))

    def stop(self) -> None:
        """SIGTERM (then SIGKILL): the process closes its WebSockets and exits."""
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


class Rest:
    """The gateway's REST API as any client calls it (aiohttp, with the token if any)."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str | None = None) -> None:
        self.http = http
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.url}{path}", headers=self.headers,
                                     **kwargs) as resp:
            return resp.status, await resp.json()

    async def submit(self, name: str, *args: Any, **kwargs: Any) -> str:
        status, doc = await self.call("POST", f"/tasks/{name}",
                                      json={"args": list(args), "kwargs": kwargs})
        assert status == 202, doc
        return str(doc["task_id"])

    async def task(self, task_id: str) -> tuple[int, Any]:
        return await self.call("GET", f"/tasks/{task_id}")

    async def wait_state(self, task_id: str, states: Collection[str] = TERMINAL,
                         timeout: float = 90) -> dict[str, Any]:
        _, doc = await eventually(
            lambda: self.task(task_id), timeout, f"task {task_id} in {states}",
            until=lambda seen: seen[0] == 200 and seen[1]["state"] in states)
        assert isinstance(doc, dict)
        return doc

    async def dead_letter_ids(self) -> set[str]:
        status, doc = await self.call("GET", "/dead-letters", params={"limit": "1000"})
        assert status == 200, doc
        return {item["task_id"] for item in doc["items"]}


def screenshot_path(page_name: str) -> Path:
    """Where the picture of a console page goes: the docs' (docs/console.md shows them)
    with ``UPDATE_CONSOLE_SCREENSHOTS=1``, else a temporary folder, so that a test run
    does not leave changed pictures (new ids and times) in the working tree."""
    folder = (SCREENSHOTS if os.environ.get("UPDATE_CONSOLE_SCREENSHOTS") == "1"
              else Path(tempfile.gettempdir()) / "cargo-console-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"console-{page_name}.png"
