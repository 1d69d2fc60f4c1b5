"""``cargoctl``'s client commands as a person or a script runs them (issue 14).

Each test runs the installed ``cargoctl`` of this checkout as a subprocess
against a real gateway (in this process, on a real port), the session's real
worker and RabbitMQ; ``watch`` on a terminal runs under a real pseudo-terminal.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import re
import select
import socket
import struct
import subprocess
import termios
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from broker.celery_protocol import encode_task
from broker.settings import Settings
from broker.topology import dead_letter_queue_name
from gateway.keys import HUB_KEY
from tests.support.catalog import TEST_ANNOUNCER
from tests.support.deadletters import publish_raw, wait_dead_letter
from tests.support.eventually import eventually
from tests.support.gateway import Gateway, running_gateway
from tests.support.processes import BIN, Proc, process_env, start_worker
from tests.support.rabbit import private_vhost
from tests.support.workers import gateway_publisher

pytestmark = pytest.mark.integration

CARGOCTL = str(BIN / "cargoctl")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def error_lines(self) -> list[str]:
        return self.stderr.splitlines()


# What a wide terminal gives rich; piped, a table would otherwise be 80 columns wide.
WIDE = {"COLUMNS": "200"}


async def cargoctl(settings: Settings, *args: str, timeout: float = 90,
                   env: dict[str, str] | None = None) -> Run:
    """``cargoctl args`` with its output piped (so not a terminal), configured for the vhost."""
    proc = await asyncio.create_subprocess_exec(
        CARGOCTL, *args, env=process_env(settings, **(env or {})), stdin=subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate()
    return Run(proc.returncode if proc.returncode is not None else -1, out.decode(),
               err.decode())


def on_terminal(settings: Settings, *args: str, timeout: float = 90) -> Run:
    """``cargoctl args`` with a pseudo-terminal (120x30) as its stdin, stdout and stderr;
    everything it drew, with the terminal's control sequences removed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    env = process_env(settings, TERM="xterm-256color")
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    proc = subprocess.Popen([CARGOCTL, *args], env=env, stdin=slave, stdout=slave,
                            stderr=slave, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal's other end
                break
            if not chunk:
                break
            chunks.append(chunk)
        returncode = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = ANSI.sub("", b"".join(chunks).decode(errors="replace"))
    return Run(returncode, text, "")


def unused_port() -> int:
    """A port nothing listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock
    finally:
        sock.close()


async def raw_get(gw: Gateway, path: str) -> str:
    async with gw.http.get(f"{gw.url}{path}") as resp:
        assert resp.status == 200
        return await resp.text()


async def poll_json(gw: Gateway, path: str, done: Callable[[Any], bool], what: str,
                    timeout: float = 90) -> Any:
    """GET ``path`` until ``done(document)`` (the management API's figures are statistics
    RabbitMQ refreshes every few seconds); the last document in the error otherwise."""
    async def document() -> Any:
        return json.loads(await raw_get(gw, path))

    return await eventually(document, timeout, f"{what} (GET {path})", until=done)


def table_rows(run: Run) -> list[list[str]]:
    """A table's body lines, each as its cells' text."""
    return [[cell.strip() for cell in line.split("│")[1:-1]]
            for line in run.stdout.splitlines() if line.startswith("│")]


def assert_one_error_line(run: Run, expected: str, exit_code: int = 1) -> None:
    assert run.returncode == exit_code, run
    assert run.error_lines() == [expected], run.stderr
    assert run.stdout == ""


# -- errors: one readable line ---------------------------------------------------------------


async def test_an_http_error_is_one_line_with_the_gateways_message_and_code(
        rabbitmq: Settings) -> None:
    async with running_gateway(rabbitmq) as gw:
        run = await cargoctl(rabbitmq, "submit", "no_such_task", "--gateway", gw.url)
    assert_one_error_line(
        run, "Error: no live worker offers a task named 'no_such_task' (unknown_task)")


async def test_an_http_error_with_details_names_what_is_wrong_in_the_same_line(
        rabbitmq: Settings) -> None:
    async with running_gateway(rabbitmq) as gw:
        run = await cargoctl(rabbitmq, "submit", "sleep", "--args", '["long"]',
                             "--gateway", gw.url)
    assert_one_error_line(run, "Error: arguments do not fit task 'sleep': args[0]: "
                               "Input should be a valid number (invalid_arguments)")


async def test_a_gateway_with_auth_on_takes_the_token_and_says_how_to_give_one_without_it(
        rabbitmq: Settings) -> None:
    token = f"t-{uuid.uuid4()}"
    async with running_gateway(rabbitmq.model_copy(update={"auth_token": token})) as gw:
        refused = await cargoctl(rabbitmq, "catalog", "-o", "json", "--gateway", gw.url)
        accepted = await cargoctl(rabbitmq, "catalog", "-o", "json", "--gateway", gw.url,
                                  "--token", token)
    assert_one_error_line(refused, "Error: missing or wrong bearer token; give the gateway's "
                                   "token with --token or CARGO_AUTH_TOKEN (unauthorized)")
    assert accepted.returncode == 0, accepted
    assert "calculate_distance" in {i["name"] for i in json.loads(accepted.stdout)["items"]}


async def test_a_gateway_that_refuses_the_connection_is_one_line_saying_so(
        rabbitmq: Settings) -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    run = await cargoctl(rabbitmq, "catalog", "--gateway", url)
    assert_one_error_line(run, f"Error: cannot reach the gateway at {url}: connection refused")


async def test_a_gateway_url_without_a_scheme_says_it_needs_http_or_https(
        rabbitmq: Settings) -> None:
    run = await cargoctl(rabbitmq, "tasks", "show", "x", "--gateway", "localhost:8000")
    assert_one_error_line(
        run, "Error: gateway URL 'localhost:8000' has no scheme: it needs http:// or https:// "
             "(for example http://localhost:8000)", exit_code=2)


async def test_arguments_that_are_not_json_are_refused_in_one_line_before_any_request(
        rabbitmq: Settings) -> None:
    # Nothing listens there: an attempt to send would have said "connection refused".
    url = f"http://127.0.0.1:{unused_port()}"
    run = await cargoctl(rabbitmq, "submit", "sleep", "--args", "[1,", "--gateway", url)
    assert_one_error_line(run, "Error: --args is not valid JSON (Expecting value at line 1 "
                               "column 4): '[1,'", exit_code=2)


# -- watch -----------------------------------------------------------------------------------


async def test_watch_on_a_terminal_shows_a_live_table_with_a_progress_bar(
        rabbitmq: Settings, worker: Proc) -> None:
    async with running_gateway(rabbitmq) as gw:
        task_id = await gw.submit("sleep", args=[0.4], kwargs={"steps": 4})
        run = await asyncio.to_thread(on_terminal, rabbitmq, "watch", task_id,
                                      "--gateway", gw.url)
    assert run.returncode == 0, run.stdout
    lines = run.stdout.splitlines()
    header = next(line for line in lines if "task_id" in line)
    assert re.search(r"task_id.*name.*state.*progress.*outcome", header), header
    row = [line for line in lines if task_id in line][-1]  # the last frame drawn
    assert re.search(r"sleep\s+│\s+succeeded\s+│\s+━{20} 4/4\s+│\s+result 0\.4", row), row
    assert "1 task: 1 succeeded" in run.stdout
    assert not run.stdout.lstrip().startswith("{"), "a terminal gets the table, not JSON lines"


async def test_watch_piped_prints_one_json_line_per_event_until_the_task_ends(
        rabbitmq: Settings, worker: Proc) -> None:
    async with running_gateway(rabbitmq) as gw:
        task_id = await gw.submit("sleep", args=[0.4], kwargs={"steps": 4})
        run = await cargoctl(rabbitmq, "watch", task_id, "--gateway", gw.url)
    assert run.returncode == 0, run
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert events, run
    assert all(e["type"] == "event" and e["task_id"] == task_id for e in events)
    assert events[-1]["state"] == "succeeded"
    assert events[-1]["result"] == 0.4
    assert run.stderr == ""


async def test_watch_piped_of_a_task_that_already_ended_prints_its_final_event_and_exits(
        rabbitmq: Settings, worker: Proc) -> None:
    async with running_gateway(rabbitmq) as gw:
        task_id = await gw.submit("calculate_distance", args=[5, 12])
        await gw.wait_state(task_id, {"succeeded"})
        run = await cargoctl(rabbitmq, "watch", task_id, "--gateway", gw.url)
    assert run.returncode == 0, run
    [line] = run.stdout.splitlines()
    final = json.loads(line)
    assert (final["type"], final["task_id"], final["state"], final["result"]) == (
        "event", task_id, "succeeded", 13.0)


async def test_submit_wait_piped_prints_the_id_then_the_tasks_events_until_it_ends(
        rabbitmq: Settings, worker: Proc) -> None:
    async with running_gateway(rabbitmq) as gw:
        run = await cargoctl(rabbitmq, "submit", "calculate_distance", "--args", "[3, 4]",
                             "--wait", "--gateway", gw.url)
    assert run.returncode == 0, run
    task_id, *lines = run.stdout.splitlines()
    uuid.UUID(task_id)
    events = [json.loads(line) for line in lines]
    assert all(e["task_id"] == task_id for e in events)
    assert events[-1]["state"] == "succeeded"
    assert events[-1]["result"] == 5.0


async def test_watch_of_an_unknown_id_says_it_is_unknown_and_exits_non_zero(
        rabbitmq: Settings) -> None:
    task_id = str(uuid.uuid4())
    async with running_gateway(rabbitmq) as gw:
        run = await cargoctl(rabbitmq, "watch", task_id, "--unknown-after", "1",
                             "--gateway", gw.url)
    assert_one_error_line(run, f"Error: unknown task {task_id}: the gateway at {gw.url} has no "
                               "record of it (never submitted, or expired) (task_not_found)")


async def test_watch_follows_an_id_the_gateway_learns_of_only_after_it_asked(
        rabbitmq: Settings, worker: Proc) -> None:
    """The race ``--unknown-after`` exists for: a task the gateway has no record of when
    ``watch`` asks (here published straight to RabbitMQ, as a Celery client or another
    replica's not-yet-read announcement would leave it) is followed once it appears."""
    task_id = str(uuid.uuid4())
    async with running_gateway(rabbitmq) as gw, gateway_publisher(rabbitmq) as publisher:
        hub = gw.app[HUB_KEY]
        watching = asyncio.create_task(cargoctl(rabbitmq, "watch", task_id,
                                                "--unknown-after", "120", "--gateway", gw.url))
        # watch subscribes only after its GET /tasks/{id}: that answer was 404.
        async def subscriptions() -> int:
            assert not watching.done(), watching.result()
            return int(hub.subscriptions)

        await eventually(subscriptions, 60, "watch subscribed")
        assert hub.store.get(task_id) is None
        await publisher.publish_task(encode_task(task_id, "calculate_distance", [6, 8], {}),
                                     rabbitmq.task_queue)
        run = await watching
    assert run.returncode == 0, run
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert events[-1]["task_id"] == task_id
    assert events[-1]["state"] == "succeeded"
    assert events[-1]["result"] == 10.0


# -- listings: tasks show, catalog, dead-letters list ----------------------------------------


async def test_tasks_show_prints_a_tasks_fields_as_a_table_and_its_json_unmodified(
        rabbitmq: Settings, worker: Proc) -> None:
    async with running_gateway(rabbitmq) as gw:
        task_id = await gw.submit("calculate_distance", args=[3, 4])
        await gw.wait_state(task_id, {"succeeded"})
        table = await cargoctl(rabbitmq, "tasks", "show", task_id, "--gateway", gw.url,
                               env=WIDE)
        as_json = await cargoctl(rabbitmq, "tasks", "show", task_id, "--output", "json",
                                 "--gateway", gw.url)
        sent = await raw_get(gw, f"/tasks/{task_id}")
    assert table.returncode == 0, table
    fields = dict(line.split(None, 1) for line in table.stdout.splitlines())
    assert fields["task_id"].strip() == task_id
    assert fields["name"].strip() == "calculate_distance"
    assert fields["state"].strip() == "succeeded"
    assert fields["result"].strip() == "5.0"
    assert as_json.returncode == 0, as_json
    assert as_json.stdout == sent + "\n"


async def test_tasks_show_of_an_unknown_id_is_the_gateways_404_in_one_line(
        rabbitmq: Settings) -> None:
    async with running_gateway(rabbitmq) as gw:
        run = await cargoctl(rabbitmq, "tasks", "show", "no-such-id", "--gateway", gw.url)
    assert_one_error_line(run, "Error: no task with id 'no-such-id' (unknown or expired) "
                               "(task_not_found)")


async def test_catalog_lists_the_tasks_live_workers_offer_as_a_table_or_the_gateways_json(
        rabbitmq: Settings) -> None:
    async with running_gateway(rabbitmq) as gw:
        table = await cargoctl(rabbitmq, "catalog", "--gateway", gw.url, env=WIDE)
        as_json = await cargoctl(rabbitmq, "catalog", "-o", "json", "--gateway", gw.url)
        sent = await raw_get(gw, "/catalog")
    assert table.returncode == 0, table
    rows = {line.split("│")[1].strip(): line for line in table.stdout.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()}
    assert {"calculate_distance", "memory_leak_task", "sleep"} <= set(rows)
    assert "x: number, y: number" in rows["calculate_distance"]
    assert as_json.returncode == 0, as_json
    assert as_json.stdout.count("\n") == 1, "one document"
    assert json.loads(as_json.stdout) == json.loads(sent)


@pytest.fixture
def two_poison_letters(rabbitmq: Settings, worker: Proc) -> list[str]:
    """Two messages naming a task no worker has, dead-lettered as ``poison`` by the worker."""
    ids = [str(uuid.uuid4()) for _ in range(2)]

    async def publish_and_wait() -> None:
        async with gateway_publisher(rabbitmq) as publisher:
            for task_id in ids:
                await publisher.publish_task(encode_task(task_id, "no_such_task", [], {}),
                                             rabbitmq.task_queue)
        for task_id in ids:
            await wait_dead_letter(rabbitmq, task_id)

    asyncio.run(publish_and_wait())
    return ids


async def test_dead_letters_list_shows_a_table_or_the_gateways_page_unmodified(
        rabbitmq: Settings, two_poison_letters: list[str]) -> None:
    async with running_gateway(rabbitmq) as gw:
        table = await cargoctl(rabbitmq, "dead-letters", "list", "--reason", "poison",
                               "--limit", "1000", "--gateway", gw.url, env=WIDE)
        as_json = await cargoctl(rabbitmq, "dead-letters", "list", "--reason", "poison",
                                 "--limit", "1000", "-o", "json", "--gateway", gw.url)
        sent = await raw_get(gw, "/dead-letters?reason=poison&limit=1000")
    assert table.returncode == 0, table
    for task_id in two_poison_letters:
        row = next(line for line in table.stdout.splitlines() if task_id in line)
        assert re.search(rf"│ {task_id} │ no_such_task\s+│ poison\s+│", row), row
    assert as_json.returncode == 0, as_json
    assert as_json.stdout == sent + "\n"


async def test_dead_letters_list_all_gathers_every_page_into_one_json_document(
        rabbitmq: Settings, two_poison_letters: list[str]) -> None:
    async with running_gateway(rabbitmq) as gw:
        run = await cargoctl(rabbitmq, "dead-letters", "list", "--reason", "poison",
                             "--limit", "1", "--all", "-o", "json", "--gateway", gw.url)
        async with gw.http.get(f"{gw.url}/dead-letters",
                               params={"reason": "poison", "limit": "1"}) as resp:
            first_page = await resp.json()
    assert first_page.get("next"), "one per page: there is a second page"
    assert run.returncode == 0, run
    assert run.stdout.count("\n") == 1, "one document"
    doc = json.loads(run.stdout)
    assert set(doc) == {"items"}
    listed = [item["task_id"] for item in doc["items"]]
    assert set(two_poison_letters) <= set(listed)
    assert len(listed) == len(set(listed))


# -- queues and workers ----------------------------------------------------------------------


@pytest.fixture
def vhost(rabbitmq: Settings) -> Iterator[Settings]:
    """A vhost of the test's own: the queue's depth is only what the test put there."""
    with private_vhost("cargo-test-cli") as settings:
        yield settings


async def test_queues_lists_the_task_queue_with_its_depth_and_consumers_as_a_table_and_json(
        vhost: Settings) -> None:
    queue, dead_letters = vhost.task_queue, dead_letter_queue_name(vhost.task_queue)
    async with running_gateway(vhost) as gw:
        await publish_raw(vhost, b"\x00 no task in here")  # the worker dead-letters it
        worker = await asyncio.to_thread(start_worker, vhost, "cli-queues", 1)
        try:
            await poll_json(gw, "/queues", lambda d: d["queues"][0]["dead_letter"]["ready"] == 1,
                            "the poison message dead-lettered")
            # One worker process, prefetch 1: it runs one, the other two wait.
            for _ in range(3):
                await gw.submit("sleep", args=[600])
            expected = {"queues": [{"name": queue, "ready": 2, "unacked": 1, "consumers": 1,
                                    "dead_letter": {"name": dead_letters, "ready": 1}}]}
            await poll_json(gw, "/queues", lambda d: d == expected, "one running, two waiting")
            table = await cargoctl(vhost, "queues", "--gateway", gw.url, env=WIDE)
            as_json = await cargoctl(vhost, "queues", "-o", "json", "--gateway", gw.url)
            sent = await raw_get(gw, "/queues")
        finally:
            worker.kill()  # SIGKILL: the sleeping task would hold a warm stop for minutes
            await asyncio.to_thread(worker.stop)
    assert table.returncode == 0, table
    assert table_rows(table) == [[queue, "2", "1", "1", dead_letters, "1"]]
    assert as_json.returncode == 0, as_json
    assert json.loads(sent) == expected
    assert as_json.stdout == sent + "\n"


async def test_workers_lists_the_running_worker_with_its_concurrency_as_a_table_and_json(
        rabbitmq: Settings, worker: Proc) -> None:
    def session_worker(doc: Any) -> dict[str, Any] | None:
        return next((w for w in doc["workers"] if w["hostname"].startswith("session-worker-")),
                    None)

    async with running_gateway(rabbitmq) as gw:
        await poll_json(gw, "/workers", lambda d: session_worker(d) is not None,
                        "the session worker announced")
        before = await raw_get(gw, "/workers")
        table = await cargoctl(rabbitmq, "workers", "--gateway", gw.url, env=WIDE)
        as_json = await cargoctl(rabbitmq, "workers", "-o", "json", "--gateway", gw.url)
        after = await raw_get(gw, "/workers")
    announced = session_worker(json.loads(before))
    assert announced is not None
    assert table.returncode == 0, table
    rows = {row[0]: row for row in table_rows(table)}
    _, queues, concurrency, processes, memory, last_seen = rows[announced["hostname"]]
    assert (queues, concurrency) == (rabbitmq.task_queue, "2")
    assert re.fullmatch(r"\d+", processes), processes
    assert re.fullmatch(r"[\d,]+\.\d MiB", memory), memory
    assert re.fullmatch(r"\d+ s ago", last_seen), last_seen  # it re-announces every 15 s
    # The test announcer stands in for a worker of an older release: no figures.
    assert rows[TEST_ANNOUNCER][2:5] == ["-", "-", "-"]
    assert as_json.returncode == 0, as_json
    # The worker may re-announce between two requests: the document is one the gateway sent.
    assert as_json.stdout in (before + "\n", after + "\n")
    listed = session_worker(json.loads(as_json.stdout))
    assert listed is not None
    assert (listed["hostname"], listed["concurrency"]) == (announced["hostname"], 2)


async def test_queues_prints_one_error_line_when_the_management_api_is_unreachable(
        rabbitmq: Settings) -> None:
    port = unused_port()
    url = f"http://guest:***@127.0.0.1:{port}"
    settings = rabbitmq.model_copy(update={
        "management_url": f"http://guest:not-to-be-shown@127.0.0.1:{port}"})
    async with running_gateway(settings) as gw:
        run = await cargoctl(rabbitmq, "queues", "--gateway", gw.url)
        workers = await cargoctl(rabbitmq, "workers", "-o", "json", "--gateway", gw.url)
    assert run.returncode == 1, run
    assert run.stdout == ""
    [line] = run.error_lines()
    assert line.startswith("Error: cannot read the queues from the RabbitMQ management API "
                           f"at {url}: "), line
    assert line.endswith(" (management_unavailable)"), line
    assert "management_url" not in line, "the details repeat the URL the message names"
    assert "not-to-be-shown" not in line
    # The workers come from the catalog, not from the management API.
    assert workers.returncode == 0, workers


# -- the gateway process ---------------------------------------------------------------------


async def test_the_gateway_on_a_busy_port_says_so_in_one_line(
        rabbitmq: Settings, listening_socket: socket.socket) -> None:
    port = listening_socket.getsockname()[1]
    run = await cargoctl(rabbitmq, "gateway", "--host", "127.0.0.1", "--port", str(port))
    assert_one_error_line(
        run, f"Error: cannot listen on 127.0.0.1:{port}: address already in use")
