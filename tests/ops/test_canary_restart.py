"""`cargoctl canary --restart-unhealthy` against an HTTP-level fake of the Kubernetes pods API.

The real `kubernetes` client talks to a fake API server (list and delete pods);
each fake worker pod serves its heartbeat on its own metrics port. The canary
fails (its gateway does not answer), so it looks for stale heartbeats.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest_asyncio

from tests.support.fakes import Recorded, pod, pods_api, serve, worker_metrics
from tests.support.metrics import free_port
from tests.support.processes import BIN

SELECTOR = "labelSelector=app.kubernetes.io%2Fcomponent%3Dworker"


async def canary(kube_api: str, *extra: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "cargoctl"), "canary", "--gateway", f"http://127.0.0.1:{free_port()}",
        "--timeout", "5", "--restart-unhealthy", "--kube-api", kube_api, "--namespace", "cargo",
        *extra, env={"PATH": "/usr/bin:/bin", "CARGO_WORKER_HEARTBEAT_MAX_AGE": "30"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


@pytest_asyncio.fixture
async def workers() -> AsyncIterator[dict[str, int]]:
    """Fake worker metrics endpoints: name -> port (one pod answers nothing)."""
    now = time.time()
    beats = {"fresh": (now, True), "stuck": (now - 120, True),
             "stuck-longer": (now - 600, True), "disconnected": (now - 900, False)}
    async with AsyncExitStack() as stack:
        ports = {}
        for name, (beat, connected) in beats.items():
            url = await stack.enter_async_context(serve(worker_metrics(beat, connected)))
            ports[name] = int(url.rsplit(":", 1)[1])
        ports["silent"] = free_port()  # nothing listens: a frozen pod
        yield ports


def deletes(recorded: Recorded) -> list[str]:
    return [path for method, path, _ in recorded.requests if method == "DELETE"]


async def test_it_deletes_the_stalest_worker_pods_up_to_the_limit_and_nothing_else(
        workers: dict[str, int]) -> None:
    recorded = Recorded()
    pods: list[dict[str, Any]] = [pod(name, port) for name, port in workers.items()]
    pods.append(pod("pending", workers["fresh"], phase="Pending"))
    async with serve(pods_api(pods, recorded)) as api:
        code, out = await canary(api, "--max-restarts", "2")
    assert code == 1, out
    assert "canary FAILED: cannot reach the gateway" in out.splitlines()[0]
    # What it sent: one list with the selector, then two deletes, silent pod first.
    assert recorded.requests[0][0] == "GET"
    assert recorded.requests[0][1] == f"/api/v1/namespaces/cargo/pods?{SELECTOR}"
    assert deletes(recorded) == ["/api/v1/namespaces/cargo/pods/silent",
                                 "/api/v1/namespaces/cargo/pods/stuck-longer"]
    assert "1 more stale pod(s) left for later runs (at most 2 at once)" in out


async def test_pods_still_terminating_use_up_the_budget(workers: dict[str, int]) -> None:
    recorded = Recorded()
    pods = [pod(name, port) for name, port in workers.items()]
    pods.append(pod("already-going", workers["stuck"], terminating=True))
    async with serve(pods_api(pods, recorded)) as api:
        code, out = await canary(api, "--max-restarts", "1")
    assert code == 1
    assert deletes(recorded) == []
    assert "terminating use the budget of 1; deleting none" in out


async def test_fresh_or_merely_disconnected_workers_are_never_deleted(
        workers: dict[str, int]) -> None:
    recorded = Recorded()
    pods = [pod(name, workers[name]) for name in ("fresh", "disconnected")]
    async with serve(pods_api(pods, recorded)) as api:
        code, out = await canary(api, "--max-restarts", "5")
    assert code == 1
    assert deletes(recorded) == []
    assert "no worker pod with a stale heartbeat (2 checked)" in out
