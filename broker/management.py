"""A small client for the RabbitMQ management HTTP API (the same API KEDA's trigger uses)."""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aiohttp


class ManagementError(RuntimeError):
    """The management API answered with an error or could not be reached."""


def _vhost(vhost: str) -> str:
    return quote(vhost, safe="")


class ManagementClient:
    """``async with ManagementClient(url) as api: await api.get_queue(vhost, name)``."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        credentials = f"{unquote(parts.username or 'guest')}:{unquote(parts.password or 'guest')}"
        self._headers = {"Authorization": "Basic " + b64encode(credentials.encode()).decode()}
        netloc = parts.hostname or "127.0.0.1"
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        self._base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(headers=self._headers,
                                              timeout=self._timeout)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, json: Any = None,
                      ok: tuple[int, ...] = (200, 201, 204)) -> Any:
        assert self._session is not None, "use ManagementClient as an async context manager"
        url = f"{self._base}/api/{path}"
        try:
            async with self._session.request(method, url, json=json) as resp:
                text = await resp.text()
                if resp.status not in ok:
                    raise ManagementError(f"{method} /api/{path}: HTTP {resp.status}: {text[:300]}")
                if not text or resp.content_type != "application/json":
                    return None
                return await resp.json()
        except aiohttp.ClientError as exc:
            raise ManagementError(f"management API at {self._base} unreachable: {exc}") from exc

    async def overview(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "overview")
        return result

    async def create_vhost(self, vhost: str, user: str) -> None:
        await self.request("PUT", f"vhosts/{_vhost(vhost)}")
        await self.request("PUT", f"permissions/{_vhost(vhost)}/{quote(user, safe='')}",
                           json={"configure": ".*", "write": ".*", "read": ".*"})

    async def delete_vhost(self, vhost: str) -> None:
        await self.request("DELETE", f"vhosts/{_vhost(vhost)}", ok=(200, 204, 404))

    async def import_definitions(self, vhost: str, definitions: dict[str, Any]) -> None:
        await self.request("POST", f"definitions/{_vhost(vhost)}", json=definitions)

    async def export_definitions(self, vhost: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"definitions/{_vhost(vhost)}")
        return result

    async def get_queue(self, vhost: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "GET", f"queues/{_vhost(vhost)}/{quote(name, safe='')}")
        return result

    async def list_queues(self, vhost: str, columns: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Every queue of ``vhost``; with ``columns``, only those fields of each."""
        fields = ",".join(columns)
        query = f"?columns={quote(fields, safe=',')}" if fields else ""
        result: list[dict[str, Any]] = await self.request("GET",
                                                          f"queues/{_vhost(vhost)}{query}")
        return result

    async def list_exchanges(self, vhost: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request("GET", f"exchanges/{_vhost(vhost)}")
        return result

    async def get_messages(self, vhost: str, queue: str, count: int) -> list[dict[str, Any]]:
        """Up to ``count`` messages from the head of ``queue``, left in the queue.

        The management API takes them and requeues them (``ack_requeue_true``):
        reading does not consume, though each read counts as a delivery.
        """
        result: list[dict[str, Any]] = await self.request(
            "POST", f"queues/{_vhost(vhost)}/{quote(queue, safe='')}/get",
            json={"count": count, "ackmode": "ack_requeue_true", "encoding": "auto"})
        return result or []

    async def list_bindings(self, vhost: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request("GET", f"bindings/{_vhost(vhost)}")
        return result
