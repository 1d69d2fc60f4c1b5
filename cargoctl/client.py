"""The gateway's REST and WebSocket API for the client commands, every failure a :class:`CliError`.

A command opens one :class:`GatewayClient` (``async with``), asks it for JSON
documents and, for ``watch``, a WebSocket. HTTP errors become the gateway's own
message and code; a gateway that cannot be reached, answers with something
that is not JSON, or does not answer in time says so in one line.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import click

from cargoctl.errors import CliError, connection_error, http_error
from cargoctl.gateway_url import checked_gateway_url, websocket_url

# A REST call's whole budget. The slowest answer the gateway gives on purpose
# is a submission waiting for the broker's confirm (CARGO_PUBLISH_TIMEOUT,
# seconds), so a minute means something is wrong.
REQUEST_SECONDS = 60.0
CONNECT_SECONDS = 10.0
WS_HEARTBEAT_SECONDS = 30.0

gateway_option = click.option(
    "--gateway", envvar="CARGO_GATEWAY_URL", default="http://127.0.0.1:8000", show_default=True,
    help="gateway base URL, http:// or https:// (env CARGO_GATEWAY_URL)")
token_option = click.option("--token", envvar="CARGO_AUTH_TOKEN", default=None,
                            help="bearer token, when the gateway has auth on "
                                 "(env CARGO_AUTH_TOKEN)")


@dataclass(frozen=True)
class Reply:
    """A successful answer: its status, the parsed document and the body as sent."""

    status: int
    doc: Any
    text: str


class GatewayClient:
    """``async with GatewayClient(url, token) as gateway:`` — one HTTP session."""

    def __init__(self, url: str, token: str | None,
                 request_seconds: float = REQUEST_SECONDS) -> None:
        self.url = checked_gateway_url(url)  # before any I/O: a bad URL is a usage error
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = aiohttp.ClientTimeout(total=request_seconds, connect=CONNECT_SECONDS)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> GatewayClient:
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=aiohttp.ClientTimeout(
            total=None, connect=CONNECT_SECONDS))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use GatewayClient in `async with`")
        return self._session

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, expect: Collection[int] = (200,)) -> Reply:
        """``method path`` (``path`` absolute, as the API's ``next`` links are); the
        reply when its status is one of ``expect``, else the gateway's error."""
        url = self.url + path
        try:
            async with self.session.request(method, url, params=params, json=body,
                                            timeout=self._timeout) as resp:
                text = await resp.text(errors="replace")
                status, reason = resp.status, resp.reason
        except aiohttp.ClientConnectorError as exc:
            raise connection_error(self.url, exc) from None
        except TimeoutError:
            raise CliError(f"the gateway at {self.url} did not answer {method} {path} "
                           f"within {self._timeout.total:g}s") from None
        except aiohttp.ClientError as exc:
            raise CliError(f"the request to the gateway at {self.url} failed: "
                           f"{type(exc).__name__}: {exc}") from None
        if status not in expect:
            raise http_error(status, reason, text, url)
        try:
            doc = json.loads(text)
        except ValueError:
            raise CliError(f"{url} answered {status} with something that is not JSON; "
                           f"is {self.url} a Cargo gateway?") from None
        return Reply(status, doc, text)

    async def websocket(self) -> aiohttp.ClientWebSocketResponse:
        """The ``/ws`` connection (the caller closes it)."""
        url = websocket_url(self.url)
        try:
            # heartbeat: a gateway gone without a word (a dropped network) is noticed.
            return await self.session.ws_connect(url, heartbeat=WS_HEARTBEAT_SECONDS)
        except aiohttp.WSServerHandshakeError as exc:
            raise CliError(f"the gateway at {self.url} refused the WebSocket with HTTP "
                           f"{exc.status}{_auth_hint(exc.status)}") from None
        except aiohttp.ClientConnectorError as exc:
            raise connection_error(self.url, exc) from None
        except TimeoutError:
            raise CliError(f"the gateway at {self.url} did not open a WebSocket in "
                           "time") from None
        except aiohttp.ClientError as exc:
            raise CliError(f"the WebSocket to the gateway at {self.url} failed: "
                           f"{type(exc).__name__}: {exc}") from None


def segment(value: str) -> str:
    """``value`` as one path segment: an id such as ``../catalog`` stays an id."""
    return quote(value, safe="")


def _auth_hint(status: int) -> str:
    return " (give --token or CARGO_AUTH_TOKEN)" if status == 401 else ""


def run_command(coro: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine; Ctrl-C ends it quietly with the shell's 130."""
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
