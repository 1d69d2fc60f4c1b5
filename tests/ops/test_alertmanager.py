"""A real Alertmanager on ops/alertmanager/alertmanager.yml: routing and inhibition.

The receivers' webhook URLs are pointed at a local recorder; everything else is
the real configuration. Alerts are posted as Prometheus would post them.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from aiohttp import web

from tests.support.eventually import eventually
from tests.support.fakes import serve
from tests.support.metrics import free_port
from tests.support.processes import LOGS
from tests.support.tools import tool

TEMPLATES = Path("/usr/share/prometheus/alertmanager/default.tmpl")
CONFIG = Path(__file__).resolve().parents[2] / "ops" / "alertmanager" / "alertmanager.yml"


class Alertmanager:
    def __init__(self, url: str, delivered: dict[str, list[str]]) -> None:
        self.url = url
        self.delivered = delivered

    async def post(self, *alerts: dict[str, str]) -> None:
        now = datetime.now(UTC)
        body = [{"labels": labels, "annotations": {"summary": labels["alertname"]},
                 "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
                for labels in alerts]
        async with aiohttp.ClientSession() as http, \
                http.post(f"{self.url}/api/v2/alerts", json=body) as resp:
            assert resp.status == 200, await resp.text()

    async def states(self) -> dict[str, tuple[str, list[str]]]:
        async with aiohttp.ClientSession() as http, \
                http.get(f"{self.url}/api/v2/alerts") as resp:
            alerts: list[dict[str, Any]] = await resp.json()
        return {a["labels"]["alertname"]: (a["status"]["state"], a["status"]["inhibitedBy"])
                for a in alerts}


def launch(binary: Path, tmp_path: Path, hooks: str, url: str) -> subprocess.Popen[bytes]:
    """Start Alertmanager on the real configuration, its webhooks pointed at ``hooks``."""
    if not TEMPLATES.is_file():
        pytest.skip(f"{TEMPLATES} is missing and Debian's alertmanager needs it: run "
                    "`bash scripts/tools.sh` as root (it links the unpacked templates there)")
    config = yaml.safe_load(CONFIG.read_text())
    for receiver in config["receivers"]:
        receiver["webhook_configs"][0]["url"] = f"{hooks}/{receiver['name']}"
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    LOGS.mkdir(parents=True, exist_ok=True)
    with (LOGS / f"alertmanager-{time.time_ns()}.log").open("wb") as log:
        return subprocess.Popen(
            [str(binary), f"--config.file={tmp_path / 'alertmanager.yml'}",
             f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address={url.removeprefix('http://')}",
             "--cluster.listen-address="], stdout=log, stderr=subprocess.STDOUT)


@pytest_asyncio.fixture
async def alertmanager(tmp_path: Path) -> AsyncIterator[Alertmanager]:
    binary = tool("prometheus-alertmanager")
    delivered: dict[str, list[str]] = {"pager": [], "tickets": []}

    async def hook(request: web.Request) -> web.Response:
        doc = await request.json()
        delivered[request.match_info["receiver"]].extend(
            a["labels"]["alertname"] for a in doc["alerts"])
        return web.Response()

    app = web.Application()
    app.router.add_post("/{receiver}", hook)
    async with serve(app) as hooks:
        url = f"http://127.0.0.1:{free_port()}"
        proc = await asyncio.to_thread(launch, binary, tmp_path, hooks, url)
        try:
            async def ready() -> bool:
                try:
                    async with aiohttp.ClientSession() as http, \
                            http.get(f"{url}/-/ready") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(ready, 60, "alertmanager ready")
            yield Alertmanager(url, delivered)
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 15)


NO_CONSUMER = {"alertname": "CargoQueueNoConsumer", "severity": "critical", "scope": "queue",
               "queue_name": "cargo"}
BROKER_DOWN = {"alertname": "CargoBrokerDown", "severity": "critical"}
MEMORY = {"alertname": "CargoTaskStoppedForMemory", "severity": "warning", "queue": "cargo"}


async def test_per_queue_alerts_are_inhibited_while_the_broker_is_down_and_critical_pages(
        alertmanager: Alertmanager) -> None:
    await alertmanager.post(NO_CONSUMER, MEMORY)

    async def active() -> bool:
        states = await alertmanager.states()
        return states.get("CargoQueueNoConsumer", ("",))[0] == "active"

    await eventually(active, 60, "the per-queue alert active on its own")

    await alertmanager.post(BROKER_DOWN, NO_CONSUMER, MEMORY)

    async def inhibited() -> bool:
        states = await alertmanager.states()
        return states.get("CargoQueueNoConsumer", ("",))[0] == "suppressed"

    await eventually(inhibited, 60, "the per-queue alert suppressed")
    states = await alertmanager.states()
    assert states["CargoQueueNoConsumer"][1], "suppressed by an inhibition"
    assert states["CargoBrokerDown"] == ("active", [])
    assert states["CargoTaskStoppedForMemory"] == ("active", []), "not a per-queue alert"

    async def paged() -> bool:
        return "CargoBrokerDown" in alertmanager.delivered["pager"]

    await eventually(paged, 60, "CargoBrokerDown delivered to the pager")
    assert "CargoTaskStoppedForMemory" not in alertmanager.delivered["pager"]
