"""Test-session RabbitMQ helpers: where the broker is, whether it answers, a private vhost.

The private vhost is ``bench.vhost``'s (one copy for benchmarks and tests).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.vhost import private_vhost as bench_private_vhost
from bench.vhost import url_with_vhost
from broker.management import ManagementClient, ManagementError
from broker.settings import Settings

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"

__all__ = ["base_url", "broker_problem", "private_vhost", "run", "url_with_vhost"]


def base_url() -> str:
    return os.environ.get("RABBITMQ_URL", DEFAULT_URL)


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
    """Settings on a fresh vhost of the broker in RABBITMQ_URL, deleted afterwards."""
    with bench_private_vhost(prefix) as settings:
        yield settings
