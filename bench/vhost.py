"""A private vhost per benchmark run or test session, and the environment of the processes
working on it.

Others run benchmarks and tests on the same broker at the same time: every
section (``bench.e2e``, ``bench.drain``, ``bench.bridge``, ``bench.submit`` and the
experiments) and every test session works on a vhost of its own, deleted on every
way out. This is the one copy of that code: the test suite imports it
(``tests.support.rabbit``) as it already imports ``bench.procs``, while ``bench``
never imports ``tests`` (``tests/unit/test_layering.py``). It is scaffolding for
runs against a broker, not product code, so it stays out of ``broker/``.

:func:`private_vhost` is a plain context manager, usable from async code too: its
two management calls run to completion on an event loop of their own, in a
thread of their own, so neither a cancelled task (Ctrl-C, SIGTERM taken as one
by ``bench.procs``) nor the caller's loop being gone can leave the vhost behind.
Used inside a running loop, it blocks that loop for those two calls, which come
before and after anything is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
from collections.abc import Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from bench.procs import clean_env
from broker.management import ManagementClient
from broker.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
# Of the caller's environment, only where the broker is: the rest of CARGO_* stays out.
BROKER_VARIABLES = ("RABBITMQ_URL", "CARGO_MANAGEMENT_URL")


def url_with_vhost(url: str, vhost: str) -> str:
    """``url`` (an AMQP URL) pointing at ``vhost`` instead."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))


def _run_to_completion(call: Coroutine[Any, Any, None]) -> None:
    """Run ``call`` on a new loop in a new thread and wait for it (see the module's doc)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(call)
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="bench-vhost")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


async def _create(management_api: str, vhost: str, user: str) -> None:
    async with ManagementClient(management_api) as api:
        await api.create_vhost(vhost, user)


async def _delete(management_api: str, vhost: str) -> None:
    async with ManagementClient(management_api) as api:
        await api.delete_vhost(vhost)


@contextlib.contextmanager
def private_vhost(prefix: str, environ: Mapping[str, str] | None = None) -> Iterator[Settings]:
    """Settings on a fresh vhost ``<prefix>-<pid>-<random>`` of the broker in ``environ``'s
    RABBITMQ_URL (default: this process's environment, read now), deleted on every way out."""
    source = os.environ if environ is None else environ
    base = load_settings({k: v for k, v in source.items() if k in BROKER_VARIABLES})
    vhost = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
    user = urlsplit(base.rabbitmq_url).username or "guest"
    _run_to_completion(_create(base.management_api, vhost, user))
    try:
        env = {"RABBITMQ_URL": url_with_vhost(base.rabbitmq_url, vhost)}
        if base.management_url:
            env["CARGO_MANAGEMENT_URL"] = base.management_url
        yield load_settings(env)
    finally:
        _run_to_completion(_delete(base.management_api, vhost))


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """A benchmarked process's environment: this checkout's code first on PYTHONPATH, the
    vhost's settings and no other CARGO_* of the caller's, quiet logs, then ``extra``."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": path, "CARGO_LOG_LEVEL": "WARNING"}
    if settings.management_url:
        env["CARGO_MANAGEMENT_URL"] = settings.management_url
    return clean_env(settings.rabbitmq_url, **{**env, **extra})
