"""A team's own Celery tasks on real Cargo workers: loaded, announced, run, on their queues.

The team's module is written to a temporary directory as a team would write it
(plain ``@shared_task`` functions, typed and untyped, no Cargo import) and
loaded by a real ``cargoctl worker`` subprocess through ``CARGO_TASK_MODULES``.
What the worker announces is read straight from ``cargo.catalog.stream`` with
aio-pika, its task events from ``cargo.events.stream``: no gateway involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from broker.catalog import Announcement, InvalidAnnouncement, decode_announcement
from broker.celery_protocol import encode_task
from broker.management import ManagementClient
from broker.settings import Settings
from broker.topology import CATALOG_STREAM
from tests.support.deadletters import wait_dead_letter
from tests.support.events import StreamEvents
from tests.support.eventually import eventually
from tests.support.processes import (
    BIN,
    ROOT,
    Proc,
    heartbeat_path,
    process_env,
    start_consumer,
    start_worker,
)
from tests.support.rabbit import private_vhost
from tests.support.workers import gateway_publisher, submit

pytestmark = pytest.mark.integration

TEAM_TASKS = '''
"""A team's tasks, written with no knowledge of Cargo."""
from celery import shared_task


@shared_task(name="team.add")
def add(a, b):
    """Add two things, whatever they are."""
    return a + b


@shared_task(name="team.typed")
def typed(x: int, y: int = 2) -> int:
    """Multiply two integers."""
    return x * y


@shared_task(name="team.long", bind=True)
def long(self, steps: int) -> int:
    """A long task reporting progress the Celery way."""
    for done in range(1, steps + 1):
        self.update_state(state="PROGRESS", meta={"done": done, "total": steps})
    return steps


@shared_task(name="team.report", queue="reports")
def report(n: int) -> int:
    return n


@shared_task(name="team.flaky", autoretry_for=(ValueError,), max_retries=1,
             retry_kwargs={"countdown": 1})
def flaky() -> None:
    raise ValueError("flaky as ever")
'''


@dataclass
class Team:
    settings: Settings
    path: str  # PYTHONPATH with the team's module
    module: str


@pytest.fixture(scope="module")
def team_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    module = f"team_tasks_{uuid.uuid4().hex[:8]}"
    directory = tmp_path_factory.mktemp("team")
    (directory / f"{module}.py").write_text(textwrap.dedent(TEAM_TASKS))
    return f"{directory}{os.pathsep}{ROOT}", module


@contextlib.contextmanager
def team_vhost(team_dir: tuple[str, str], prefix: str) -> Iterator[Team]:
    path, module = team_dir
    with private_vhost(prefix) as settings:
        yield Team(settings, path, module)


def team_env(team: Team, **extra: str) -> dict[str, str]:
    return {"PYTHONPATH": team.path, "CARGO_TASK_MODULES": team.module,
            "CARGO_CATALOG_INTERVAL": "2", **extra}


def start_team_worker(team: Team, name: str, *args: str, **env: str) -> Proc:
    """``cargoctl worker [args]`` loading the team's module; waits until it consumes."""
    full_env = {"CARGO_WORKER_METRICS_PORT": "0",
                "CARGO_WORKER_HEARTBEAT_FILE": heartbeat_path(name), **team_env(team, **env)}
    if not args:
        return start_worker(team.settings, name, concurrency=1, **full_env)
    return start_consumer(team.settings, name, [
        str(BIN / "cargoctl"), "worker", "--concurrency", "1",
        "--hostname", f"{name}-{os.getpid()}-{time.time_ns()}@%h", *args], **full_env)


@contextlib.asynccontextmanager
async def catalog_stream(settings: Settings) -> AsyncIterator[list[Announcement]]:
    """Every announcement on ``cargo.catalog.stream`` from its start, as it arrives."""
    seen: list[Announcement] = []
    connection = await aio_pika.connect(settings.rabbitmq_url, timeout=10)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=100)
        queue = await channel.declare_queue(CATALOG_STREAM, passive=True)

        async def on_message(message: AbstractIncomingMessage) -> None:
            with contextlib.suppress(InvalidAnnouncement):
                seen.append(decode_announcement(message.body, settings.vhost))
            await message.ack()

        await queue.consume(on_message, arguments={"x-stream-offset": "first"})
        yield seen
    finally:
        await connection.close()


async def wait_announcement(seen: list[Announcement], found: Callable[[Announcement], bool],
                            timeout: float = 60, what: str = "announcement") -> Announcement:
    """The first announcement in ``seen`` that is ``found`` (bounded)."""
    async def first_found() -> Announcement | None:
        return next((a for a in seen if found(a)), None)

    return await eventually(
        first_found, timeout,
        lambda: f"{what}; seen: {[(a.worker, a.withdrawn, a.queues) for a in seen]}")


def of_worker(name: str) -> Callable[[Announcement], bool]:
    return lambda a: a.worker.startswith(f"{name}-") and not a.withdrawn


@pytest.fixture(scope="module")
def team(team_dir: tuple[str, str]) -> Iterator[tuple[Team, Proc]]:
    """One vhost and one worker of the team's module consuming all its tasks' queues."""
    with team_vhost(team_dir, "cargo-test-team") as team:
        worker = start_team_worker(team, "team")
        try:
            yield team, worker
        finally:
            worker.stop()


async def test_a_worker_announces_its_teams_typed_and_untyped_tasks_with_their_schemas(
    team: tuple[Team, Proc],
) -> None:
    settings = team[0].settings
    async with catalog_stream(settings) as seen:
        announcement = await wait_announcement(seen, of_worker("team"))
    tasks = {t.name: t for t in announcement.tasks}
    assert set(tasks) == {"team.add", "team.typed", "team.long", "team.report", "team.flaky"}
    assert set(announcement.queues) == {"cargo", "reports"}
    assert announcement.vhost == settings.vhost
    assert announcement.ttl == 6  # three intervals of 2 s
    typed = tasks["team.typed"]
    assert typed.arguments["properties"]["x"]["type"] == "integer"
    assert typed.arguments["required"] == ["x"]
    assert typed.doc == "Multiply two integers."
    assert typed.queue == "cargo"
    untyped = tasks["team.add"].arguments
    assert untyped["x-cargo-positional"] == ["a", "b"]
    assert "type" not in untyped["properties"]["a"]
    assert tasks["team.long"].arguments["x-cargo-positional"] == ["steps"]  # no self
    assert tasks["team.report"].queue == "reports"
    assert tasks["team.flaky"].limits.max_retries == 1


async def test_a_worker_announces_again_every_catalog_interval(
    team: tuple[Team, Proc],
) -> None:
    async with catalog_stream(team[0].settings) as seen:
        first = await wait_announcement(seen, of_worker("team"))
        later = await wait_announcement(seen, lambda a: of_worker("team")(a)
                                        and a.announced_at > first.announced_at,
                                        what="a later announcement")
    assert later.started_at == first.started_at
    assert later.tasks == first.tasks


async def test_untyped_and_typed_tasks_run_with_the_json_values_as_given(
    team: tuple[Team, Proc],
) -> None:
    settings = team[0].settings
    async with StreamEvents(settings) as events, gateway_publisher(settings) as pub:
        lists = await submit(pub, settings, "team.add", [["a"], ["b"]])
        numbers = await submit(pub, settings, "team.typed", [3], {"y": 5})
        bad = await submit(pub, settings, "team.typed", ["3"])
        added = await events.until_state(lists)
        multiplied = await events.until_state(numbers)
        refused = await events.until_state(bad)
    assert added[-1].result == ["a", "b"]
    assert multiplied[-1].result == 15
    assert [e.state.value for e in refused][-2:] == ["failed", "dead_lettered"]
    assert refused[-1].reason == "failed"
    assert refused[-2].error is not None
    assert refused[-2].error["type"] == "TypeError"


async def test_a_task_calling_update_state_produces_progress_events(
    team: tuple[Team, Proc],
) -> None:
    settings = team[0].settings
    async with StreamEvents(settings) as events, gateway_publisher(settings) as pub:
        task_id = await submit(pub, settings, "team.long", [3])
        history = await events.until_state(task_id)
    assert [e.state.value for e in history] == [
        "started", "progress", "progress", "progress", "succeeded"]
    assert [e.progress for e in history if e.state.value == "progress"] == [
        {"done": 1, "total": 3}, {"done": 2, "total": 3}, {"done": 3, "total": 3}]
    assert history[-1].result == 3


async def test_a_task_with_autoretry_for_retries_once_then_is_dead_lettered_failed(
    team: tuple[Team, Proc],
) -> None:
    settings = team[0].settings
    async with StreamEvents(settings) as events, gateway_publisher(settings) as pub:
        task_id = await submit(pub, settings, "team.flaky", [])
        history = await events.until_state(task_id, timeout=90)
    assert [e.state.value for e in history] == [
        "started", "failed", "retrying", "started", "failed", "dead_lettered"]
    assert history[-1].reason == "failed"
    assert history[-2].error is not None
    assert history[-2].error["type"] == "ValueError"
    message = await wait_dead_letter(settings, task_id)
    assert message["properties"]["headers"]["x-cargo-reason"] == "failed"


@pytest.fixture
def own_team(team_dir: tuple[str, str]) -> Iterator[Team]:
    """A vhost of its own for one test's worker."""
    with team_vhost(team_dir, "cargo-test-team-own") as team:
        yield team


async def test_a_worker_on_queue_cargo_neither_announces_nor_runs_a_task_routed_to_reports(
    own_team: Team,
) -> None:
    team = own_team
    settings = team.settings
    worker = await asyncio.to_thread(start_team_worker, team, "cargo-only",
                                     "--queues", "cargo")
    try:
        async with catalog_stream(settings) as seen:
            announcement = await wait_announcement(seen, of_worker("cargo-only"))
        async with StreamEvents(settings) as events, gateway_publisher(settings) as pub:
            report_id = str(uuid.uuid4())
            # The worker declared "reports" (with its .XQ) though it does not consume it.
            await pub.publish_task(encode_task(report_id, "team.report", [1], None),
                                   "reports")
            # A task on its own queue, published after: once it has run, the worker
            # has had every chance to take the reports message.
            cargo_id = await submit(pub, settings, "team.typed", [2])
            await events.until_state(cargo_id)
        async with ManagementClient(settings.management_api) as api:
            reports = await api.get_queue(settings.vhost, "reports")
            dead = await api.get_queue(settings.vhost, "reports.XQ")
    finally:
        worker.stop()
    assert announcement.queues == ("cargo",)
    assert "team.report" not in {t.name for t in announcement.tasks}
    assert "team.typed" in {t.name for t in announcement.tasks}
    assert events.of(report_id) == []
    assert reports["consumers"] == 0
    assert reports["arguments"]["x-queue-type"] == "quorum"
    assert reports["arguments"]["x-dead-letter-routing-key"] == "reports.XQ"
    assert dead["arguments"]["x-queue-type"] == "quorum"
    # Still there for a worker of the reports pool (the management API's count lags).
    await wait_queue_depth(settings, "reports", 1)


async def wait_queue_depth(settings: Settings, queue: str, depth: int,
                           timeout: float = 30) -> None:
    async with ManagementClient(settings.management_api) as api:
        async def ready() -> Any:
            return (await api.get_queue(settings.vhost, queue)).get("messages_ready")

        await eventually(ready, timeout, f"{depth} ready in {queue}",
                         until=lambda ready: ready == depth)


async def test_a_worker_that_stops_gracefully_withdraws_its_catalog(own_team: Team) -> None:
    team = own_team
    worker = await asyncio.to_thread(start_team_worker, team, "leaving")
    try:
        async with catalog_stream(team.settings) as seen:
            live = await wait_announcement(seen, of_worker("leaving"))
            await asyncio.to_thread(worker.stop, 60)  # SIGTERM: Celery's warm shutdown
            gone = await wait_announcement(seen, lambda a: a.worker == live.worker and a.withdrawn,
                                           what="a withdrawal")
    finally:
        worker.stop()
    assert gone.tasks == ()
    assert gone.announced_at >= live.announced_at


async def test_a_worker_announces_again_when_its_connection_comes_back(own_team: Team) -> None:
    team = own_team
    # An interval far longer than the test: any later announcement is the reconnect's.
    worker = await asyncio.to_thread(start_team_worker, team, "reconnecting",
                                     CARGO_CATALOG_INTERVAL="300")
    try:
        async with catalog_stream(team.settings) as seen:
            first = await wait_announcement(seen, of_worker("reconnecting"))
            async with ManagementClient(team.settings.management_api) as api:
                connections = await api.request(
                    "GET", f"vhosts/{quote(team.settings.vhost, safe='')}/connections")
                # The worker's own (py-amqp, kombu's client); not this test's aio-pika one.
                for connection in connections:
                    if connection.get("client_properties", {}).get("product") == "py-amqp":
                        await api.request(
                            "DELETE", f"connections/{quote(connection['name'], safe='')}",
                            ok=(200, 204, 404))
            again = await wait_announcement(seen, lambda a: a.worker == first.worker
                                            and a.announced_at > first.announced_at,
                                            timeout=90, what="an announcement after the reconnect")
    finally:
        worker.stop()
    assert again.tasks == first.tasks
    assert again.started_at == first.started_at


def test_a_module_that_does_not_import_stops_the_worker_at_start_with_nothing_declared(
    team_dir: tuple[str, str],
) -> None:
    with team_vhost(team_dir, "cargo-test-nomodule") as team:
        env = process_env(team.settings, **team_env(
            team, CARGO_TASK_MODULES="workers.builtin,nosuchmodule",
            CARGO_WORKER_METRICS_PORT="0"))
        result = subprocess.run([str(BIN / "cargoctl"), "worker"], env=env,
                                capture_output=True, text=True, timeout=120, check=False)

        async def queues() -> list[dict[str, Any]]:
            async with ManagementClient(team.settings.management_api) as api:
                return await api.list_queues(team.settings.vhost)

        declared = asyncio.run(queues())
    assert result.returncode == 2
    assert "CARGO_TASK_MODULES" in result.stderr
    assert "'nosuchmodule'" in result.stderr
    assert "ModuleNotFoundError: No module named 'nosuchmodule'" in result.stderr
    assert declared == []
