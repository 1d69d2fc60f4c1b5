"""Worker liveness and readiness from the heartbeat, through `cargoctl worker health`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import pytest_asyncio

from bench.proxy import BrokerProxy
from broker.settings import Settings
from tests.support.eventually import eventually
from tests.support.processes import (
    BIN,
    Proc,
    heartbeat_path,
    process_env,
    start_chaos_worker,
    start_worker,
)

pytestmark = pytest.mark.integration

FAST = {"CARGO_WORKER_HEARTBEAT_INTERVAL": "0.3", "CARGO_WORKER_HEARTBEAT_MAX_AGE": "3"}


def start(starter: Callable[..., Proc], settings: Settings, name: str, heartbeat: str) -> Proc:
    return starter(settings, name, 2, CARGO_WORKER_HEARTBEAT_FILE=heartbeat,
                   CARGO_WORKER_HEARTBEAT_INTERVAL=FAST["CARGO_WORKER_HEARTBEAT_INTERVAL"],
                   CARGO_WORKER_HEARTBEAT_MAX_AGE=FAST["CARGO_WORKER_HEARTBEAT_MAX_AGE"])


async def health(settings: Settings, heartbeat: str, mode: str) -> tuple[int, str]:
    """Run `cargoctl worker health --<mode>` as a probe would; its exit code and output."""
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "cargoctl"), "worker", "health", f"--{mode}",
        env=process_env(settings, CARGO_WORKER_HEARTBEAT_FILE=heartbeat, **FAST),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode().strip()


async def wait_health(settings: Settings, heartbeat: str, mode: str, code: int,
                      timeout: float = 60) -> str:
    """Poll the probe until it exits with ``code`` (bounded); its last output."""
    _, out = await eventually(lambda: health(settings, heartbeat, mode), timeout,
                              f"the {mode} probe exiting {code}",
                              until=lambda last: last[0] == code)
    return out


def written_at(heartbeat: str) -> float:
    return float(json.loads(Path(heartbeat).read_text())["written_at"])


async def test_a_running_worker_is_live_and_ready_and_a_missing_one_is_neither(
        rabbitmq: Settings) -> None:
    missing = heartbeat_path("nobody")
    code, out = await health(rabbitmq, missing, "liveness")
    assert code == 1
    assert "no heartbeat file" in out

    heartbeat = heartbeat_path("healthy")
    proc = await asyncio.to_thread(start, start_worker, rabbitmq, "healthy", heartbeat)
    try:
        assert await wait_health(rabbitmq, heartbeat, "liveness", 0) == "ok"
        assert await wait_health(rabbitmq, heartbeat, "readiness", 0) == "ok"
        # as the chart's probes run it: everything on the command line, no settings loaded
        explicit = await asyncio.create_subprocess_exec(
            str(BIN / "cargoctl"), "worker", "health", "--readiness", "--file", heartbeat,
            "--max-age", "3", env={"PATH": "/usr/bin:/bin"})
        assert await explicit.wait() == 0
    finally:
        await asyncio.to_thread(proc.stop)
    code, out = await health(rabbitmq, heartbeat, "liveness")
    assert code == 1, "a stopped worker removes its heartbeat"


async def test_liveness_fails_when_the_workers_consumer_is_stuck(rabbitmq: Settings) -> None:
    heartbeat = heartbeat_path("stuck")
    proc = await asyncio.to_thread(start, start_chaos_worker, rabbitmq, "stuck", heartbeat)
    try:
        await wait_health(rabbitmq, heartbeat, "liveness", 0)
        os.kill(proc.pid, signal.SIGUSR2)  # the main thread (the consumer loop) blocks for good
        out = await wait_health(rabbitmq, heartbeat, "liveness", 1)
        assert "consumer is stuck" in out, out
        assert proc.alive(), "the process itself still runs"
        before = written_at(heartbeat)

        async def rewritten() -> bool:
            return written_at(heartbeat) > before

        # only the loop is stuck: the file is still written
        await eventually(rewritten, 60, "the heartbeat file rewritten")
        code, out = await health(rabbitmq, heartbeat, "readiness")
        assert code == 1
        assert "stuck" in out
    finally:
        await asyncio.to_thread(proc.stop)


@pytest_asyncio.fixture
async def proxy(rabbitmq: Settings) -> AsyncIterator[tuple[BrokerProxy, Settings]]:
    target = urlsplit(rabbitmq.rabbitmq_url)
    broker = BrokerProxy(target.hostname or "127.0.0.1", target.port or 5672)
    await broker.start()
    netloc = f"{target.username}:{target.password}@127.0.0.1:{broker.port}"
    url = urlunsplit((target.scheme, netloc, target.path, "", ""))
    try:
        yield broker, rabbitmq.model_copy(update={"rabbitmq_url": url,
                                                  "management_url": rabbitmq.management_api})
    finally:
        await broker.stop()


async def test_readiness_fails_while_the_broker_is_unreachable_and_liveness_does_not(
        proxy: tuple[BrokerProxy, Settings]) -> None:
    broker, settings = proxy
    heartbeat = heartbeat_path("cut-off")
    proc = await asyncio.to_thread(start, start_worker, settings, "cut-off", heartbeat)
    try:
        await wait_health(settings, heartbeat, "readiness", 0)
        await broker.go_down()
        out = await wait_health(settings, heartbeat, "readiness", 1)
        assert "not connected to the broker" in out, out
        code, out = await health(settings, heartbeat, "liveness")
        assert code == 0, f"a worker waiting for its broker is alive: {out}"
        await broker.come_back()
        assert await wait_health(settings, heartbeat, "readiness", 0, timeout=90) == "ok"
    finally:
        await asyncio.to_thread(proc.stop)
