"""A real Prometheus, on the real rules, sees a real fault and raises the alert.

Prometheus (the `prometheus` binary that scripts/tools.sh unpacks) scrapes a
gateway, a prefork worker and RabbitMQ's prometheus plugin every second, with
the scrape jobs of ops/prometheus/prometheus.yml and the rules of
ops/prometheus/rules.yml made test-sized (30 s ranges, 2 s `for:`). A burst of
tasks that fail for good must make CargoTaskFailureRatioHigh pending or firing
in Prometheus' alerts API, a leaking task stopped by the memory guard must make
CargoTaskStoppedForMemory fire, and CargoBrokerDown stays silent.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml

from broker.settings import Settings
from tests.support.eventually import eventually
from tests.support.gateway import running_gateway
from tests.support.metrics import free_port
from tests.support.processes import LOGS, start_chaos_worker
from tests.support.promql import short_rules
from tests.support.rabbit import private_vhost
from tests.support.tools import tool
from tests.support.workers import gateway_publisher, submit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SCRAPE_JOBS = Path(__file__).resolve().parents[2] / "ops" / "prometheus" / "prometheus.yml"
FAILURES = 12


@pytest.fixture
def vhost(rabbitmq: Settings) -> Iterator[Settings]:
    with private_vhost("cargo-test-alerts") as settings:
        yield settings


def prometheus_config(gateway: str, worker: str, rabbitmq: str, vhost: str) -> dict[str, Any]:
    """ops/prometheus/prometheus.yml with local targets, 1 s scrapes and evaluations."""
    config: dict[str, Any] = yaml.safe_load(SCRAPE_JOBS.read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config.pop("alerting")
    targets = {"cargo-gateway": gateway, "cargo-worker": worker, "rabbitmq": rabbitmq,
               "rabbitmq-queues": rabbitmq}
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
            if job["job_name"] == "rabbitmq-queues":
                job["params"]["vhost"] = [vhost]
            jobs.append(job)
    assert len(jobs) == len(targets), "a scrape job the rules need is missing"
    config["scrape_configs"] = jobs
    return config


class Prometheus:
    def __init__(self, workdir: Path, config: dict[str, Any], rules: str) -> None:
        (workdir / "rules.yml").write_text(rules)
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log = (LOGS / f"prometheus-{time.time_ns()}.log").open("wb")
        self.proc = subprocess.Popen(
            [str(tool("prometheus")), f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address={self.url.removeprefix('http://')}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()

    async def get(self, path: str) -> Any:
        async with aiohttp.ClientSession() as http, http.get(self.url + path) as resp:
            return await resp.json()

    async def wait(self, what: str, check: Any, timeout: float = 120) -> Any:
        async def checked() -> Any:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited; its log: {self.log.name}")
            return await check()

        return await eventually(checked, timeout, what, ignoring=(aiohttp.ClientError,))

    async def targets_up(self) -> dict[str, str]:
        doc = await self.get("/api/v1/targets")
        return {t["labels"]["job"]: t["health"] for t in doc["data"]["activeTargets"]}

    async def alerts(self) -> dict[str, str]:
        doc = await self.get("/api/v1/alerts")
        return {a["labels"]["alertname"]: a["state"] for a in doc["data"]["alerts"]}


async def test_a_burst_of_failures_raises_the_failure_ratio_alert_in_a_real_prometheus(
        vhost: Settings, tmp_path: Path) -> None:
    port = free_port()
    worker = await asyncio.to_thread(
        start_chaos_worker, vhost, "alerts", 2, CARGO_WORKER_METRICS_PORT=str(port),
        CARGO_TASK_LIMITS='{"memory_leak_task": {"memory_mb": 24}}')
    prometheus: Prometheus | None = None
    try:
        async with running_gateway(vhost) as gw:
            rabbit = f"{urlsplit(vhost.rabbitmq_url).hostname}:15692"
            prometheus = Prometheus(tmp_path, prometheus_config(
                gw.url.removeprefix("http://"), f"127.0.0.1:{port}", rabbit, vhost.vhost),
                short_rules())
            up = await prometheus.wait("every target up", lambda: _all_up(prometheus))
            assert set(up) == {"cargo-gateway", "cargo-worker", "rabbitmq", "rabbitmq-queues"}
            assert await prometheus.alerts() == {}, "a healthy stack raises nothing"

            async with gateway_publisher(vhost) as publisher:
                for _ in range(FAILURES):  # spread out, so the 1 s scrapes see the counter rise
                    await submit(publisher, vhost, "fail_permanently", [])
                    await asyncio.sleep(0.5)
            alerts = await prometheus.wait(
                "CargoTaskFailureRatioHigh pending or firing",
                lambda: _alert(prometheus, "CargoTaskFailureRatioHigh"))

            # the second fault: a task that leaks until the memory guard stops it
            leak = await gw.submit("memory_leak_task", kwargs={"mb_per_second": 64})
            assert (await gw.wait_state(leak, {"dead_lettered"}))["reason"] == "memory_limit"
            alerts = await prometheus.wait(
                "CargoTaskStoppedForMemory firing",
                lambda: _alert(prometheus, "CargoTaskStoppedForMemory", {"firing"}))
    finally:
        if prometheus is not None:
            prometheus.stop()
        await asyncio.to_thread(worker.stop)
    assert alerts["CargoTaskFailureRatioHigh"] in {"pending", "firing"}
    assert alerts["CargoTaskStoppedForMemory"] == "firing"
    assert "CargoBrokerDown" not in alerts
    assert "CargoQueueNoConsumer" not in alerts


async def _all_up(prometheus: Prometheus | None) -> dict[str, str] | None:
    assert prometheus is not None
    up = await prometheus.targets_up()
    return up if up and all(health == "up" for health in up.values()) else None


async def _alert(prometheus: Prometheus | None, name: str,
                 states: frozenset[str] | set[str] = frozenset({"pending", "firing"}),
                 ) -> dict[str, str] | None:
    assert prometheus is not None
    alerts = await prometheus.alerts()
    return alerts if alerts.get(name) in states else None
