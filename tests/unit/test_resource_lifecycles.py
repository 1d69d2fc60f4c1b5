"""Resources with a lifecycle live exactly as long as their ``with`` block."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from bridge.health import HeartbeatWriter
from bridge.metrics import BridgeMetrics
from gateway.memory import MemoryReleaser
from workers.heartbeat import Heartbeat
from workers.metrics import WorkerMetrics


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        text: str = answer.read().decode()
        return text


async def test_the_bridge_heartbeat_is_written_inside_its_block_and_removed_after(
        tmp_path: Path) -> None:
    path = tmp_path / "bridge.json"
    async with HeartbeatWriter(str(path), 3600, lambda: (True, ["default"])):
        await asyncio.sleep(0)  # the writer's first turn writes before it sleeps
        assert json.loads(path.read_text())["queues"] == ["default"]
    assert not path.exists()


def test_leaving_the_worker_heartbeat_block_stops_its_thread_and_removes_its_file(
        tmp_path: Path) -> None:
    path = tmp_path / "worker.json"
    heartbeat = Heartbeat(str(path), 3600, 60)
    with heartbeat.writing():
        assert any(thread.name == "cargo-heartbeat" for thread in threading.enumerate())
    assert not any(thread.name == "cargo-heartbeat" for thread in threading.enumerate())
    assert not path.exists()


async def test_leaving_the_memory_releaser_block_ends_its_task() -> None:
    def running() -> bool:
        return any(task.get_name() == "memory-releaser" for task in asyncio.all_tasks())

    async with MemoryReleaser(lambda: 0, release=lambda: False):
        assert running()
    assert not running()


async def test_the_bridge_serves_its_own_metrics_with_prometheus_async_until_the_block_ends(
) -> None:
    metrics = BridgeMetrics()
    metrics.connected.set(1)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    async with metrics.serving(port, "127.0.0.1"), aiohttp.ClientSession() as http:
        async with http.get(url) as answer:
            assert "cargo_bridge_connected 1.0" in await answer.text()
    with pytest.raises(urllib.error.URLError):
        await asyncio.to_thread(scrape, url)


async def test_a_bridge_whose_metrics_port_is_taken_keeps_running_unscraped() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        async with BridgeMetrics().serving(taken.getsockname()[1], "127.0.0.1"):
            pass  # no exception: the bridge goes on without its endpoint


def test_the_worker_serves_its_metrics_from_a_thread_until_the_block_ends() -> None:
    metrics = WorkerMetrics()
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with metrics.serving(port, "127.0.0.1"):
        assert "cargo_worker_broker_connected" in scrape(url)
    with pytest.raises(urllib.error.URLError):
        scrape(url)


def test_a_worker_whose_metrics_port_is_taken_keeps_running_unscraped() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with WorkerMetrics().serving(taken.getsockname()[1], "127.0.0.1"):
            pass  # no exception: the worker goes on without its endpoint
