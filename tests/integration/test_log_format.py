"""One logging dialect: with ``CARGO_LOG_FORMAT=json`` a real worker and a real gateway
write nothing but JSON objects to stderr, Celery's and kombu's lines included.

Each process runs with stdout and stderr in files of their own. Celery *prints* its
start banner and its shutdown notices to stdout (``sys.__stdout__``, never through
logging), so stdout is not a log and is not checked; every log line goes to stderr.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from broker.management import ManagementError
from broker.settings import Settings
from tests.support.catalog import announce_builtin_tasks
from tests.support.eventually import eventually, eventually_sync
from tests.support.processes import BIN, LOGS, heartbeat_path, process_env, queue_consumers
from tests.support.rabbit import private_vhost, run

pytestmark = pytest.mark.integration


@dataclass
class Started:
    """A process whose stderr (the log) and stdout are kept apart."""

    popen: subprocess.Popen[bytes]
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@contextmanager
def started(name: str, args: list[str], env: dict[str, str]) -> Iterator[Started]:
    LOGS.mkdir(parents=True, exist_ok=True)
    stem = LOGS / f"{name}-{os.getpid()}-{time.time_ns()}"
    with open(f"{stem}.stdout", "wb") as out, open(f"{stem}.stderr", "wb") as err:
        popen = subprocess.Popen(args, env=env, stdout=out, stderr=err, start_new_session=True)
        try:
            yield Started(popen, Path(f"{stem}.stderr"))
        finally:
            # SIGTERM: the shutdown's own lines are part of what is checked.
            if popen.poll() is None:
                os.killpg(popen.pid, signal.SIGTERM)
            try:
                popen.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait(5)


def consuming(settings: Settings) -> bool:
    try:
        return bool(run(queue_consumers(settings, settings.task_queue)) > 0)
    except ManagementError:  # 404 until the worker declared the queue
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Any, what: str, proc: Started, timeout: float = 60) -> None:
    def holds() -> bool:
        assert proc.popen.poll() is None, f"exited while waiting for {what}:\n{proc.stderr()}"
        return bool(condition())

    eventually_sync(holds, timeout, lambda: f"{what}:\n{proc.stderr()}")


async def distance_result(url: str) -> dict[str, Any]:
    """Submit calculate_distance through the gateway and wait for its outcome."""
    async with aiohttp.ClientSession() as http:
        async def readyz() -> int:
            async with http.get(f"{url}/readyz") as resp:
                return resp.status

        # ready: connected, topology declared, catalog replayed
        await eventually(readyz, 60, "the gateway ready", until=lambda status: status == 200,
                         ignoring=(aiohttp.ClientConnectionError,))
        async with http.post(f"{url}/distance/", params={"x": 3, "y": 4}) as resp:
            assert resp.status == 202, await resp.text()
            task_id = (await resp.json())["task_id"]

        async def task() -> tuple[int, dict[str, Any]]:
            async with http.get(f"{url}/tasks/{task_id}") as resp:
                return resp.status, await resp.json()

        _, doc = await eventually(
            task, 60, f"task {task_id} finished",
            until=lambda answer: answer[0] == 200
            and answer[1]["state"] in {"succeeded", "failed", "dead_lettered"})
        return doc


def not_json_objects(log: str) -> list[str]:
    """The stderr lines that are not a JSON object with event, level and timestamp."""
    wrong = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            wrong.append(line)
            continue
        if not (isinstance(entry, dict) and {"event", "level", "timestamp"} <= entry.keys()):
            wrong.append(line)
    return wrong


@pytest.fixture
def own_vhost(rabbitmq: Settings) -> Iterator[Settings]:
    """A vhost of this test's own (beside the session's): no other worker takes its task."""
    with private_vhost("cargo-test-logs") as settings:
        run(announce_builtin_tasks(settings))
        yield settings


def test_a_worker_and_a_gateway_asked_for_json_write_only_json_objects_to_stderr(
    own_vhost: Settings,
) -> None:
    settings = own_vhost
    port = free_port()
    env = process_env(settings, CARGO_LOG_FORMAT="json", CARGO_WORKER_METRICS_PORT="0",
                      CARGO_WORKER_HEARTBEAT_FILE=heartbeat_path("json-logs"))
    with started("json-logs-worker", [str(BIN / "cargoctl"), "worker", "--concurrency", "1",
                                      "--hostname", f"json-logs-{time.time_ns()}@%h"],
                 env) as worker:
        wait_until(lambda: consuming(settings), "consumer on the task queue", worker)
        with started("json-logs-gateway", [str(BIN / "cargoctl"), "gateway", "--host",
                                           "127.0.0.1", "--port", str(port)],
                     env) as gateway:
            doc = run(distance_result(f"http://127.0.0.1:{port}"))
            assert doc["state"] == "succeeded", doc
            task_id = doc["task_id"]
    worker_log, gateway_log = worker.stderr(), gateway.stderr()
    assert not_json_objects(worker_log) == [], worker_log[-3000:]
    assert not_json_objects(gateway_log) == [], gateway_log[-3000:]
    worker_lines = [json.loads(line) for line in worker_log.splitlines()]
    loggers = {entry.get("logger", "") for entry in worker_lines}
    # Celery's own records came through the same formatter, its task lines included ...
    assert any(name.startswith("celery") for name in loggers), sorted(loggers)
    assert any(task_id in entry["event"] and entry["level"] == "info"
               for entry in worker_lines), worker_log[-3000:]
    # a line logged while the task ran names it, as Celery's task formatter did
    assert any(entry.get("task_id") == task_id and entry.get("task_name") == "calculate_distance"
               for entry in worker_lines), worker_log[-3000:]
    # ... and so did Cargo's (structlog) and the gateway's.
    assert any(name.startswith(("workers.", "broker.")) for name in loggers), sorted(loggers)
    assert any(json.loads(line)["event"] == "gateway.starting"
               for line in gateway_log.splitlines()), gateway_log[-3000:]
