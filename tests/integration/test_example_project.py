"""examples/acme-tasks end to end, started with the commands its README gives.

The README's worker commands are read from the README itself (its ``sh``
blocks), so the test runs what a newcomer types: two pools, ``default`` on
``cargo`` and ``reports`` on ``reports``, each loading the team's modules.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.settings import Settings
from tests.support.eventually import eventually
from tests.support.gateway import Gateway, events_of, running_gateway, terminal
from tests.support.processes import BIN, LOGS, ROOT, Proc, process_env, wait_for_consumer
from tests.support.rabbit import private_vhost

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "acme-tasks"
README = EXAMPLE / "README.md"
TASKS = {"acme_tasks.images.thumbnail", "acme_tasks.images.legacy_add",
         "acme_tasks.images.reindex", "acme_tasks.reports.monthly_report"}


def readme_commands(text: str) -> list[str]:
    """Every command line of the README's ``sh`` blocks, continuation lines joined."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line:
                commands.append(line)
    return commands


# What ``scripts/stack.sh`` runs as its worker (on CARGO_TASK_QUEUE, ``cargo``): the
# README's default pool is the stack's worker with the README's environment.
STACK_WORKER = [".venv/bin/cargoctl", "worker", "--concurrency", "2", "--queues", "cargo",
                "--hostname", "acme-stack@%h"]


def worker_commands() -> list[tuple[dict[str, str], list[str]]]:
    """The README's worker commands as (environment, argv): ``cargoctl worker``
    lines, and ``scripts/stack.sh`` lines as the stack's worker."""
    found = []
    for command in readme_commands(README.read_text()):
        words = shlex.split(command)
        env: dict[str, str] = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        if words[:2] == [".venv/bin/cargoctl", "worker"]:
            found.append((env, words))
        elif words[:1] == ["scripts/stack.sh"]:
            found.append((env, list(STACK_WORKER)))
    return found


def test_the_readme_gives_one_worker_per_pool() -> None:
    commands = worker_commands()
    assert [argv[argv.index("--queues") + 1] for _, argv in commands] == ["cargo", "reports"]
    assert [env["CARGO_TASK_MODULES"] for env, _ in commands] == [
        "workers.builtin,acme_tasks.images", "acme_tasks.reports"]
    assert "pip install -e examples/acme-tasks" in README.read_text()


@pytest.fixture(scope="module")
def acme_vhost(rabbitmq: Settings) -> Iterator[Settings]:
    """A vhost of the example's own, as a team's deployment has: there no other
    worker consumes ``cargo`` (the session's worker does not load acme_tasks,
    and a gateway refuses a task not every worker on its queue offers)."""
    with private_vhost("cargo-acme") as settings:
        yield settings


@pytest.fixture(scope="module")
def acme_pools(acme_vhost: Settings) -> Iterator[dict[str, Proc]]:
    """Both pools of the README, run as it says (the package is on PYTHONPATH,
    which is what its ``pip install -e`` gives; metrics ports and heartbeat files
    are per test run, since sessions share the machine)."""
    rabbitmq = acme_vhost
    pools: dict[str, Proc] = {}
    try:
        for env, argv in worker_commands():
            queue = argv[argv.index("--queues") + 1]
            run_id = f"{os.getpid()}-{time.time_ns()}"
            env.update(CARGO_WORKER_METRICS_PORT="0",
                       CARGO_WORKER_HEARTBEAT_FILE=str(LOGS / f"acme-{queue}-{run_id}.json"),
                       PYTHONPATH=os.pathsep.join([str(EXAMPLE), str(ROOT)]))
            argv = [str(BIN / "cargoctl"), *argv[1:]]
            argv[argv.index("--hostname") + 1] = f"acme-{queue}-{run_id}@%h"
            proc = Proc(f"acme-{queue}", argv, process_env(rabbitmq, **env))
            pools[queue] = proc
            wait_for_consumer(rabbitmq, queue, proc)
        yield pools
    finally:
        for proc in pools.values():
            proc.stop()


@pytest.fixture
async def acme(acme_vhost: Settings, acme_pools: dict[str, Proc]) -> AsyncIterator[Gateway]:
    async with running_gateway(acme_vhost) as gw:
        await wait_catalog(gw, TASKS)
        yield gw


async def wait_catalog(gw: Gateway, names: set[str], timeout: float = 60) -> dict[str, Any]:
    async def catalog() -> dict[str, Any]:
        async with gw.http.get(f"{gw.url}/catalog") as resp:
            assert resp.status == 200
            return {item["name"]: item for item in (await resp.json())["items"]}

    return await eventually(catalog, timeout, f"all of {sorted(names)} in the catalog",
                            until=lambda items: names <= items.keys())


async def post(gw: Gateway, name: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with gw.http.post(f"{gw.url}/tasks/{name}", json=body) as resp:
        return resp.status, await resp.json()


async def run_to_end(gw: Gateway, name: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with gw.ws() as ws:
        status, doc = await post(gw, name, body)
        assert status == 202, doc
        await ws.send({"op": "subscribe", "task_ids": [doc["task_id"]]})
        frames = await ws.receive_until(terminal(doc["task_id"]), timeout=60)
    return events_of(frames, doc["task_id"])


async def test_the_catalog_lists_the_teams_tasks_with_schemas_from_their_type_hints(
        acme: Gateway) -> None:
    items = await wait_catalog(acme, TASKS)
    thumbnail = items["acme_tasks.images.thumbnail"]
    assert thumbnail["queue"] == "cargo"
    assert thumbnail["schema"]["properties"]["width"]["type"] == "integer"
    assert thumbnail["schema"]["properties"]["fmt"]["enum"] == ["png", "jpeg"]
    assert thumbnail["doc"].startswith("Describe the thumbnail")
    assert items["acme_tasks.images.legacy_add"]["schema"]["properties"]["a"].get("type") is None
    report = items["acme_tasks.reports.monthly_report"]
    assert report["queue"] == "reports"
    assert report["limits"]["memory_limit_mb"] == 64
    assert report["limits"]["time_limit"] == 120
    assert report["limits"]["max_retries"] == 1


async def test_a_typed_task_runs_from_rest_and_streams_its_result(acme: Gateway) -> None:
    events = await run_to_end(acme, "acme_tasks.images.thumbnail",
                              {"args": ["https://example.com/cat.png"], "kwargs": {"width": 64}})
    assert [e["state"] for e in events][-1] == "succeeded"
    assert events[-1]["result"] == {"thumbnail": "cat.png.64.png", "width": 64}


async def test_bad_arguments_for_a_typed_task_are_a_422_from_the_announced_schema(
        acme: Gateway) -> None:
    status, doc = await post(acme, "acme_tasks.images.thumbnail",
                             {"kwargs": {"url": "x", "width": "wide", "fmt": "gif"}})
    assert status == 422, doc
    assert doc["error"]["code"] == "invalid_arguments"
    assert doc["error"]["details"] == [
        {"loc": ["kwargs", "width"], "msg": "Input should be a valid integer"},
        {"loc": ["kwargs", "fmt"], "msg": "Input should be 'png' or 'jpeg'"},
    ]


async def test_an_untyped_legacy_task_takes_any_json_values(acme: Gateway) -> None:
    events = await run_to_end(acme, "acme_tasks.images.legacy_add", {"args": ["con", "cat"]})
    assert events[-1]["state"] == "succeeded"
    assert events[-1]["result"] == "concat"


async def test_update_state_in_a_long_task_streams_progress_events(acme: Gateway) -> None:
    events = await run_to_end(acme, "acme_tasks.images.reindex",
                              {"args": [30], "kwargs": {"batch": 10}})
    progress = [e["progress"] for e in events if e["state"] == "progress"]
    assert progress == [{"done": 10, "total": 30}, {"done": 20, "total": 30},
                        {"done": 30, "total": 30}]
    assert events[-1]["state"] == "succeeded"
    assert events[-1]["result"] == 30


async def test_a_task_on_the_second_queue_runs_on_the_reports_pool_only(
        acme: Gateway, acme_pools: dict[str, Proc]) -> None:
    events = await run_to_end(acme, "acme_tasks.reports.monthly_report",
                              {"args": ["2026-11"], "kwargs": {"rows": 4}})
    assert events[-1]["state"] == "succeeded"
    assert events[-1]["result"] == {"month": "2026-11", "rows": 4, "total": 10}
    task_id = events[-1]["task_id"]
    assert task_id in acme_pools["reports"].output()
    assert task_id not in acme_pools["cargo"].output()


async def test_a_failing_report_is_retried_its_own_max_retries_then_dead_lettered(
        acme: Gateway) -> None:
    events = await run_to_end(acme, "acme_tasks.reports.monthly_report", {"args": ["November"]})
    assert [e["state"] for e in events].count("failed") == 2  # the first run and one retry
    assert events[-1]["state"] == "dead_lettered"
    assert events[-1]["reason"] == "failed"
    assert events[-1]["error"]["type"] == "ValueError"


def test_the_example_package_knows_nothing_about_cargo() -> None:
    sources = "\n".join(p.read_text() for p in Path(EXAMPLE, "acme_tasks").glob("*.py"))
    assert not re.search(r"^\s*(from|import)\s+(workers|broker|gateway|cargoctl)\b", sources,
                         flags=re.M)
