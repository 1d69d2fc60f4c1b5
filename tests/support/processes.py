"""Real Cargo processes (Celery workers, gateways) started as subprocesses for tests."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from bench import procs
from broker.management import ManagementClient
from broker.settings import Settings
from tests.support.eventually import eventually_sync

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
LOGS = Path(os.environ.get("CARGO_TEST_LOGS", "/tmp/cargo-test-logs"))


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CARGO_") and k != "RABBITMQ_URL"}
    env["RABBITMQ_URL"] = settings.rabbitmq_url
    if settings.management_url:
        env["CARGO_MANAGEMENT_URL"] = settings.management_url
    env.update(extra)
    return env


class Proc(procs.Proc):
    """A subprocess in its own process group, with its output in the tests' log directory."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        super().__init__(name, args, env, LOGS)

    def stop(self, timeout: float = 15) -> None:
        super().stop(timeout)


async def queue_consumers(settings: Settings, queue: str) -> int:
    async with ManagementClient(settings.management_api) as api:
        info = await api.get_queue(settings.vhost, queue)
    return int(info.get("consumers") or 0)


def wait_for_consumer(settings: Settings, queue: str, proc: Proc, timeout: float = 60) -> None:
    def consumers() -> int:
        if not proc.alive():
            raise RuntimeError(f"process exited early:\n{proc.output()[-3000:]}")
        return asyncio.run(queue_consumers(settings, queue))

    # Any other error (the management API not answering yet, the queue not
    # declared yet) is one more failed check.
    eventually_sync(consumers, timeout,
                    lambda: f"a consumer on {queue!r}:\n{proc.output()[-3000:]}",
                    ignoring=(Exception,))


def start_consumer(settings: Settings, name: str, args: list[str], **env: str) -> Proc:
    """Start a process and wait until it consumes the task queue."""
    proc = Proc(name, args, process_env(settings, **env))
    try:
        wait_for_consumer(settings, settings.task_queue, proc)
    except BaseException:
        proc.stop()
        raise
    return proc


def heartbeat_path(name: str) -> str:
    """A heartbeat file of this worker's own (sessions share the machine and /tmp)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    return str(LOGS / f"{name}-{os.getpid()}-{time.time_ns()}.heartbeat.json")


def start_worker(settings: Settings, name: str = "worker", concurrency: int = 2,
                 **env: str) -> Proc:
    """Start ``cargoctl worker`` and wait until it consumes the task queue.

    Its metrics port is off unless ``CARGO_WORKER_METRICS_PORT`` is given (test
    sessions run side by side on one machine).
    """
    env.setdefault("CARGO_WORKER_METRICS_PORT", "0")
    env.setdefault("CARGO_WORKER_HEARTBEAT_FILE", heartbeat_path(name))
    return start_consumer(settings, name, [
        str(BIN / "cargoctl"), "worker", "--concurrency", str(concurrency),
        "--hostname", f"{name}-{os.getpid()}-{time.time_ns()}@%h"], **env)


def start_chaos_worker(settings: Settings, name: str = "chaos", concurrency: int = 2,
                       **env: str) -> Proc:
    """A real worker that also offers the failing tasks of ``tests.support.chaos_tasks``."""
    env.setdefault("CARGO_TASK_MODULES", "workers.builtin,tests.support.chaos_tasks")
    env.setdefault("CARGO_WORKER_METRICS_PORT", "0")
    env.setdefault("CARGO_WORKER_HEARTBEAT_FILE", heartbeat_path(name))
    env.setdefault("PYTHONPATH", str(ROOT))
    return start_consumer(settings, name, [
        sys.executable, "-m", "tests.support.chaos", "--concurrency", str(concurrency),
        "--hostname", f"{name}-{os.getpid()}-{time.time_ns()}@%h"], **env)
