"""A team's own tasks: a worker loads them, announces them, and a gateway that has
never seen their code accepts them, checks their arguments and runs them.

Every gateway here is a real ``cargoctl gateway`` process whose import path does
not hold the team's module; the workers are real ``cargoctl worker`` processes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from broker.settings import Settings
from tests.support.eventually import eventually
from tests.support.metrics import free_port
from tests.support.processes import BIN, LOGS, ROOT, Proc, process_env, wait_for_consumer

pytestmark = pytest.mark.integration


def write_module(directory: Path, name: str, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return directory


@asynccontextmanager
async def team_worker(settings: Settings, module_dir: Path, modules: str, queue: str,
                      name: str) -> AsyncIterator[Proc]:
    """``cargoctl worker --queues <queue>`` loading ``modules`` from ``module_dir``."""
    run_id = f"{os.getpid()}-{time.time_ns()}"
    proc = Proc(name, [str(BIN / "cargoctl"), "worker", "--queues", queue, "--concurrency", "1",
                       "--hostname", f"{name}-{run_id}@%h"],
                process_env(settings, CARGO_TASK_MODULES=modules, CARGO_WORKER_METRICS_PORT="0",
                            CARGO_WORKER_HEARTBEAT_FILE=str(LOGS / f"{name}-{run_id}.json"),
                            PYTHONPATH=os.pathsep.join([str(module_dir), str(ROOT)])))
    try:
        await asyncio.to_thread(wait_for_consumer, settings, queue, proc)
        yield proc
    finally:
        await asyncio.to_thread(proc.stop)  # a clean stop: the worker withdraws its catalog


class GatewayProc:
    def __init__(self, proc: Proc, url: str, http: aiohttp.ClientSession) -> None:
        self.proc, self.url, self.http = proc, url, http

    async def post(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with self.http.post(f"{self.url}/tasks/{name}", json=body) as resp:
            return resp.status, await resp.json()

    async def catalog(self) -> dict[str, Any]:
        async with self.http.get(f"{self.url}/catalog") as resp:
            assert resp.status == 200
            return {item["name"]: item for item in (await resp.json())["items"]}

    async def wait_catalog(self, done: Any, timeout: float = 60) -> dict[str, Any]:
        items: dict[str, Any] = await eventually(
            self.catalog, timeout,
            lambda: f"the catalog the test expects:\n{self.proc.output()[-2000:]}", until=done)
        return items

    async def state(self, task_id: str, states: set[str], timeout: float = 60) -> Any:
        async def task() -> Any:
            async with self.http.get(f"{self.url}/tasks/{task_id}") as resp:
                return await resp.json()

        return await eventually(task, timeout, f"task {task_id} in {states}",
                                until=lambda doc: doc.get("state") in states)

    async def result(self, task_id: str, timeout: float = 60) -> Any:
        return await self.state(task_id, {"succeeded", "dead_lettered", "revoked"}, timeout)


@asynccontextmanager
async def gateway_process(settings: Settings, name: str = "gateway") -> AsyncIterator[GatewayProc]:
    """A real ``cargoctl gateway`` whose PYTHONPATH is the repository only."""
    port = free_port()
    proc = Proc(name, [str(BIN / "cargoctl"), "gateway", "--host", "127.0.0.1",
                       "--port", str(port)], process_env(settings, PYTHONPATH=str(ROOT)))
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async def readyz() -> int:
                assert proc.alive(), proc.output()[-3000:]
                async with http.get(f"{url}/readyz") as resp:
                    return resp.status

            await eventually(readyz, 60, lambda: f"the gateway ready:\n{proc.output()[-3000:]}",
                             until=lambda status: status == 200, ignoring=(aiohttp.ClientError,))
            yield GatewayProc(proc, url, http)
    finally:
        await asyncio.to_thread(proc.stop)


TEAM_SOURCE = """
    import time

    from celery import shared_task


    @shared_task(queue="{queue}")
    def resize(width: int, height: int, mode: str = "fit") -> str:
        \"\"\"Resize to width x height.\"\"\"
        return f"{{width}}x{{height}}:{{mode}}"


    @shared_task(queue="{queue}")
    def pair(a, b):
        return [a, b]


    @shared_task(queue="{queue}", cargo_memory_limit_mb=48, max_retries=0)
    def hog(mb: int) -> int:
        # Hold on to mb MiB, one at a time, then wait.
        kept = []
        for _ in range(mb):
            kept.append(b"\\x01" * 1024 * 1024)
            time.sleep(0.01)
        time.sleep(30)
        return len(kept)


    @shared_task(bind=True, queue="{queue}")
    def nap(self, seconds: float) -> float:
        # Sleep in steps, reporting each.
        for step in range(int(seconds * 10)):
            time.sleep(0.1)
            self.update_state(state="PROGRESS", meta={{"step": step}})
        return seconds
"""


@pytest.fixture
def team(tmp_path: Path) -> tuple[Path, str, str]:
    """A module of ordinary Celery tasks that exists only in a temporary directory."""
    suffix = uuid.uuid4().hex[:8]
    module, queue = f"teamjobs_{suffix}", f"team-{suffix}"
    write_module(tmp_path / "team", module, TEAM_SOURCE.format(queue=queue))
    return tmp_path / "team", module, queue


def test_the_gateway_and_the_bridge_import_no_task_code() -> None:
    code = ("import sys, gateway.app, bridge.runner, cargoctl.main\n"
            "bad = sorted(m for m in sys.modules if m == 'workers' or m.startswith('workers.'))\n"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_a_gateway_without_the_task_module_accepts_good_arguments_and_422s_bad_ones(
        rabbitmq: Settings, team: tuple[Path, str, str]) -> None:
    module_dir, module, queue = team
    absent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", f"import {module}", stderr=asyncio.subprocess.DEVNULL,
        env=process_env(rabbitmq, PYTHONPATH=str(ROOT)))
    assert await absent.wait() != 0  # the gateway's import path has no such module
    async with team_worker(rabbitmq, module_dir, module, queue, "team-worker") as worker:
        async with gateway_process(rabbitmq) as gw:
            resize = f"{module}.resize"
            items = await gw.wait_catalog(lambda i: resize in i)
            assert items[resize]["queue"] == queue
            assert items[resize]["doc"] == "Resize to width x height."

            status, doc = await gw.post(resize, {"args": [640, 480]})
            assert status == 202, doc
            assert (await gw.result(doc["task_id"]))["result"] == "640x480:fit"

            status, doc = await gw.post(resize, {"args": ["wide"], "kwargs": {"mode": 3,
                                                                              "dpi": 300}})
            assert status == 422, doc
            assert doc["error"]["code"] == "invalid_arguments"
            assert doc["error"]["details"] == [
                {"loc": ["kwargs", "dpi"], "msg": "unexpected keyword argument"},
                {"loc": ["args", 0], "msg": "Input should be a valid integer"},
                {"loc": ["kwargs", "mode"], "msg": "Input should be a valid string"},
                {"loc": ["args", 1], "msg": "missing required argument 'height'"},
            ]

            status, doc = await gw.post(f"{module}.pair", {"args": [{"any": ["json"]}, None]})
            assert status == 202, doc
            assert (await gw.result(doc["task_id"]))["result"] == [{"any": ["json"]}, None]

            status, doc = await gw.post(f"{module}.nonexistent", {})
            assert status == 404
            assert doc["error"]["code"] == "unknown_task"
        assert worker.alive()


async def test_a_gateway_started_after_the_worker_and_a_restarted_one_know_its_tasks_at_once(
        rabbitmq: Settings, team: tuple[Path, str, str]) -> None:
    module_dir, module, queue = team
    async with team_worker(rabbitmq, module_dir, module, queue, "team-worker"):
        for attempt in ("first", "restarted"):
            async with gateway_process(rabbitmq, f"gateway-{attempt}") as gw:
                # Ready means connected; the catalog comes from the stream's recent past.
                await gw.wait_catalog(lambda i: f"{module}.resize" in i, timeout=15)
                status, doc = await gw.post(f"{module}.resize", {"args": [1, 2]})
                assert status == 202, (attempt, doc)


async def test_tasks_of_a_stopped_worker_are_unknown_at_once(
        rabbitmq: Settings, team: tuple[Path, str, str]) -> None:
    module_dir, module, queue = team
    async with gateway_process(rabbitmq) as gw:
        async with team_worker(rabbitmq, module_dir, module, queue, "team-worker"):
            await gw.wait_catalog(lambda i: f"{module}.resize" in i)
        # A clean stop withdraws the worker's catalog.
        await gw.wait_catalog(lambda i: f"{module}.resize" not in i, timeout=30)
        status, doc = await gw.post(f"{module}.resize", {"args": [1, 2]})
        assert status == 404, doc
        assert doc["error"]["code"] == "unknown_task"


ROLLING_V1 = """
    from celery import shared_task


    @shared_task(name="{name}", queue="{queue}")
    def scale(factor: int) -> int:
        return factor
"""
ROLLING_V2 = """
    from celery import shared_task


    @shared_task(name="{name}", queue="{queue}")
    def scale(factor: int, offset: int = 0) -> int:
        return factor + offset
"""


async def test_during_a_rolling_deploy_only_arguments_every_live_version_accepts_get_in(
        rabbitmq: Settings, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    name, queue, module = f"rolling_{suffix}.scale", f"rolling-{suffix}", f"rolling_{suffix}"
    v1 = write_module(tmp_path / "v1", module, ROLLING_V1.format(name=name, queue=queue))
    v2 = write_module(tmp_path / "v2", module, ROLLING_V2.format(name=name, queue=queue))
    async with gateway_process(rabbitmq) as gw:
        async with team_worker(rabbitmq, v1, module, queue, "rolling-v1"):
            await gw.wait_catalog(lambda i: name in i)
            async with team_worker(rabbitmq, v2, module, queue, "rolling-v2"):
                items = await gw.wait_catalog(lambda i: i.get(name, {}).get("workers") == 2)
                assert "allOf" in items[name]["schema"]
                status, doc = await gw.post(name, {"kwargs": {"factor": 2}})
                assert status == 202, doc
                status, doc = await gw.post(name, {"kwargs": {"factor": 2, "offset": 1}})
                assert status == 422, doc
                assert doc["error"]["details"] == [
                    {"loc": ["kwargs", "offset"], "msg": "unexpected keyword argument"}]
            # v2 stopped (withdrew): v1's rule alone applies again.
            await gw.wait_catalog(lambda i: i.get(name, {}).get("workers") == 1)
            status, doc = await gw.post(name, {"kwargs": {"factor": 2, "offset": 1}})
            assert status == 422, doc
        async with team_worker(rabbitmq, v2, module, queue, "rolling-v2-only"):
            await gw.wait_catalog(
                lambda i: "offset" in i.get(name, {}).get("schema", {}).get("properties", {}))
            status, doc = await gw.post(name, {"kwargs": {"factor": 2, "offset": 1}})
            assert status == 202, doc
            assert (await gw.result(doc["task_id"]))["result"] == 3


async def test_a_team_task_past_its_own_decorator_memory_limit_is_dead_lettered_memory_limit(
        rabbitmq: Settings, team: tuple[Path, str, str]) -> None:
    module_dir, module, queue = team
    async with team_worker(rabbitmq, module_dir, module, queue, "team-worker") as worker:
        async with gateway_process(rabbitmq) as gw:
            items = await gw.wait_catalog(lambda i: f"{module}.hog" in i)
            assert items[f"{module}.hog"]["limits"]["memory_limit_mb"] == 48
            status, doc = await gw.post(f"{module}.hog", {"args": [400]})
            assert status == 202, doc
            final = await gw.state(doc["task_id"], {"succeeded", "dead_lettered"}, timeout=90)
            assert final["state"] == "dead_lettered", final
            assert final["reason"] == "memory_limit"
        assert worker.alive()


async def test_a_running_team_task_is_revoked_over_rest(
        rabbitmq: Settings, team: tuple[Path, str, str]) -> None:
    module_dir, module, queue = team
    async with team_worker(rabbitmq, module_dir, module, queue, "team-worker"):
        async with gateway_process(rabbitmq) as gw:
            await gw.wait_catalog(lambda i: f"{module}.nap" in i)
            status, doc = await gw.post(f"{module}.nap", {"args": [60]})
            assert status == 202, doc
            task_id = doc["task_id"]
            running = await gw.state(task_id, {"progress"})
            assert running["progress"]["step"] >= 0
            async with gw.http.delete(f"{gw.url}/tasks/{task_id}") as resp:
                assert resp.status == 202, await resp.text()
            final = await gw.state(task_id, {"revoked", "succeeded", "dead_lettered"})
            assert final["state"] == "revoked", final


OTHER_SOURCE = """
    from celery import shared_task


    @shared_task(queue="{queue}")
    def other(a: int) -> int:
        return a
"""


async def test_a_task_not_every_worker_on_its_queue_knows_is_refused_until_that_worker_goes(
        rabbitmq: Settings, team: tuple[Path, str, str], tmp_path: Path) -> None:
    """A worker that does not know a task would dead-letter it as poison: while one
    consumes the task's queue (an old version mid-deploy, a pool loaded differently),
    the gateway answers 503 and queues nothing."""
    module_dir, module, queue = team
    other_dir = write_module(tmp_path / "other", f"other_{module}", OTHER_SOURCE.format(
        queue=queue))
    async with gateway_process(rabbitmq) as gw:
        async with team_worker(rabbitmq, module_dir, module, queue, "team-worker"):
            async with team_worker(rabbitmq, other_dir, f"other_{module}", queue, "lacking"):
                items = await gw.wait_catalog(
                    lambda i: f"other_{module}.other" in i and i.get(
                        f"{module}.resize", {}).get("missing_on"))
                lacking = items[f"{module}.resize"]["missing_on"]
                assert len(lacking) == 1
                assert lacking[0].startswith("lacking-")
                status, doc = await gw.post(f"{module}.resize", {"args": [1, 2]})
                assert status == 503, doc
                assert doc["error"]["code"] == "task_not_on_every_worker"
                assert doc["error"]["details"] == {"queue": queue, "workers_missing": lacking}
            await gw.wait_catalog(lambda i: not i.get(f"{module}.resize", {}).get("missing_on")
                                  and f"{module}.resize" in i)
            status, doc = await gw.post(f"{module}.resize", {"args": [1, 2]})
            assert status == 202, doc
            assert (await gw.result(doc["task_id"]))["result"] == "1x2:fit"
