"""Test-session RabbitMQ helpers: a private vhost per session, removed afterwards."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from broker.management import ManagementClient, ManagementError
from broker.settings import Settings, load_settings

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def base_url() -> str:
    return os.environ.get("RABBITMQ_URL", DEFAULT_URL)


def url_with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def broker_problem(settings: Settings) -> str | None:
    """None when the management API answers; else what exactly is missing."""

    async def probe() -> None:
        async with ManagementClient(settings.management_api, timeout=5) as api:
            await api.overview()

    try:
        run(probe())
    except ManagementError as exc:
        return (
            f"RabbitMQ with the management plugin is not reachable ({exc}).\n"
            f"Start it with `scripts/rabbitmq.sh` (or `rabbitmq-server -detached` and "
            f"`rabbitmq-plugins enable rabbitmq_management rabbitmq_prometheus`), or point "
            f"RABBITMQ_URL / CARGO_MANAGEMENT_URL at one."
        )
    return None


@contextmanager
def private_vhost(prefix: str = "cargo-test") -> Iterator[Settings]:
    """Create a vhost, yield settings pointing at it, delete it afterwards."""
    root = load_settings({"RABBITMQ_URL": base_url(), **{
        k: v for k, v in os.environ.items() if k == "CARGO_MANAGEMENT_URL"}})
    vhost = f"{prefix}-{uuid.uuid4().hex[:8]}"
    user = urlsplit(root.rabbitmq_url).username or "guest"

    async def create() -> None:
        async with ManagementClient(root.management_api) as api:
            await api.create_vhost(vhost, user)

    async def delete() -> None:
        async with ManagementClient(root.management_api) as api:
            await api.delete_vhost(vhost)

    run(create())
    try:
        env = {"RABBITMQ_URL": url_with_vhost(root.rabbitmq_url, vhost)}
        if root.management_url:
            env["CARGO_MANAGEMENT_URL"] = root.management_url
        yield load_settings(env)
    finally:
        run(delete())
