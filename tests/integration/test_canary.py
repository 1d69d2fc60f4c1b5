"""`cargoctl canary` against a real gateway and worker, pushing to a fake Pushgateway."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from broker.settings import Settings
from tests.support.fakes import Recorded, pods_api, pushgateway, serve
from tests.support.gateway import running_gateway
from tests.support.metrics import parse, total
from tests.support.processes import BIN, Proc, process_env
from tests.support.rabbit import private_vhost

pytestmark = pytest.mark.integration


async def canary(settings: Settings, gateway: str, timeout: float, push: str,
                 *extra: str) -> tuple[int, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "cargoctl"), "canary", "--gateway", gateway, "--timeout", str(timeout),
        *extra, env=process_env(settings, CARGO_CANARY_PUSHGATEWAY=push),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode().splitlines()


def pushed(recorded: Recorded) -> dict[str, float]:
    assert len(recorded.requests) == 1, recorded.requests
    method, path, body = recorded.requests[0]
    assert (method, path) == ("PUT", "/metrics/job/cargo-canary")
    samples = parse(body)
    return {name: total(samples, name) for name, _ in samples}


async def test_the_canary_succeeds_through_gateway_and_worker_and_pushes_its_success(
        rabbitmq: Settings, worker: Proc) -> None:
    pushes, kube = Recorded(), Recorded()
    async with running_gateway(rabbitmq) as gw, serve(pushgateway(pushes)) as push, \
            serve(pods_api([], kube)) as api:
        code, lines = await canary(rabbitmq, gw.url, 60, push,
                                   "--restart-unhealthy", "--kube-api", api)
    assert code == 0, lines
    assert len(lines) == 1
    assert lines[0].startswith("canary ok: calculate_distance(")
    metrics = pushed(pushes)
    assert metrics["cargo_canary_success"] == 1
    assert metrics["cargo_canary_duration_seconds"] > 0
    assert metrics["cargo_canary_last_run_timestamp_seconds"] > 0
    assert kube.requests == [], "a passing canary restarts nothing"


@pytest.fixture
def workerless(rabbitmq: Settings) -> Iterator[Settings]:
    """A vhost no worker consumes."""
    with private_vhost("cargo-test-canary") as settings:
        yield settings


async def test_the_canary_fails_in_one_line_when_no_result_comes_in_time(
        workerless: Settings) -> None:
    pushes = Recorded()
    async with running_gateway(workerless) as gw, serve(pushgateway(pushes)) as push:
        code, lines = await canary(workerless, gw.url, 3, push)
    assert code == 1
    assert lines == [lines[0]], lines
    assert lines[0].startswith("canary FAILED: no result from calculate_distance within 3s")
    assert pushed(pushes)["cargo_canary_success"] == 0
