"""`cargoctl topology export` and `declare` against a real RabbitMQ, each in an empty vhost."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest

from broker.management import ManagementClient
from broker.settings import Settings, load_settings
from broker.topology import Topology, build_topology
from tests.support.eventually import eventually_sync
from tests.support.processes import BIN, process_env
from tests.support.rabbit import base_url, private_vhost, run, url_with_vhost

pytestmark = pytest.mark.integration

DEFAULT_EXCHANGES = {"", "amq.direct", "amq.fanout", "amq.headers", "amq.match", "amq.topic",
                     "amq.rabbitmq.trace"}


@pytest.fixture
def empty_vhost(rabbitmq: Settings) -> Iterator[Settings]:
    """A brand-new vhost of its own (deleted afterwards), so nothing was declared before."""
    with private_vhost("cargo-topology") as settings:
        yield settings


def cargoctl(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``cargoctl`` as a user would, configured for ``settings`` (+ ``env``)."""
    return subprocess.run([str(BIN / "cargoctl"), *args], env=process_env(settings, **env),
                          capture_output=True, text=True, timeout=60, check=False)


async def _snapshot(settings: Settings) -> dict[str, Any]:
    async with ManagementClient(settings.management_api) as api:
        queues = await api.list_queues(settings.vhost)
        exchanges = await api.list_exchanges(settings.vhost)
        bindings = await api.list_bindings(settings.vhost)
    return {
        "queues": {q["name"]: (q["type"], q["durable"], q["arguments"]) for q in queues},
        "exchanges": {e["name"]: (e["type"], e["durable"], e["arguments"]) for e in exchanges
                      if e["name"] not in DEFAULT_EXCHANGES},
        "bindings": {(b["source"], b["destination"], b["destination_type"], b["routing_key"])
                     for b in bindings if b["source"] != ""},
    }


def broker_state(settings: Settings) -> dict[str, Any]:
    """What the vhost holds now, as the management API reports it."""
    state: dict[str, Any] = run(_snapshot(settings))
    return state


def expected_state(topology: Topology) -> dict[str, Any]:
    return {
        "queues": {q.name: (q.queue_type, q.durable, q.arguments) for q in topology.queues},
        "exchanges": {e.name: (e.type, e.durable, e.arguments) for e in topology.exchanges},
        "bindings": {*((b.exchange, q.name, "queue", b.routing_key)
                       for q in topology.queues for b in q.bindings),
                     *((b.source, b.destination, "exchange", b.routing_key)
                       for b in topology.exchange_bindings)},
    }


def assert_vhost_holds_exactly(settings: Settings, topology: Topology) -> None:
    # The management API's view can trail a declaration by a moment.
    expected = expected_state(topology)
    with contextlib.suppress(TimeoutError):
        eventually_sync(lambda: broker_state(settings), 10, "the vhost's topology",
                        until=lambda state: state == expected)
    assert broker_state(settings) == expected


def import_definitions(settings: Settings, document: dict[str, Any], *,
                       whole_broker: bool = False) -> None:
    async def post() -> None:
        async with ManagementClient(settings.management_api) as api:
            if whole_broker:
                await api.request("POST", "definitions", json=document)
            else:
                await api.import_definitions(settings.vhost, document)

    run(post())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_the_exported_definitions_recreate_the_topology_exactly_in_an_empty_vhost(
    empty_vhost: Settings,
) -> None:
    assert broker_state(empty_vhost) == {"queues": {}, "exchanges": {}, "bindings": set()}

    export = cargoctl(empty_vhost, "topology", "export")
    assert export.returncode == 0, export.stderr
    import_definitions(empty_vhost, json.loads(export.stdout))

    assert_vhost_holds_exactly(empty_vhost, build_topology(empty_vhost))


def test_the_whole_broker_form_of_the_export_imports_into_the_vhost_it_names(
    empty_vhost: Settings,
) -> None:
    export = cargoctl(empty_vhost, "topology", "export", "--vhost", empty_vhost.vhost)
    assert export.returncode == 0, export.stderr
    import_definitions(empty_vhost, json.loads(export.stdout), whole_broker=True)

    assert_vhost_holds_exactly(empty_vhost, build_topology(empty_vhost))


def test_clients_can_declare_on_top_of_an_imported_topology(empty_vhost: Settings) -> None:
    # RabbitMQ refuses a redeclaration with different arguments, so this proves the
    # export and the gateway's and workers' declarations are the same.
    export = cargoctl(empty_vhost, "topology", "export")
    import_definitions(empty_vhost, json.loads(export.stdout))

    declare = cargoctl(empty_vhost, "topology", "declare")

    assert declare.returncode == 0, declare.stderr
    assert_vhost_holds_exactly(empty_vhost, build_topology(empty_vhost))


def test_declare_succeeds_twice_and_leaves_exactly_the_topology(empty_vhost: Settings) -> None:
    first = cargoctl(empty_vhost, "topology", "declare")
    second = cargoctl(empty_vhost, "topology", "declare")

    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    topology = build_topology(empty_vhost)
    for queue in topology.queues:
        assert queue.name in first.stdout
    assert f"vhost {empty_vhost.vhost!r}" in first.stdout
    assert_vhost_holds_exactly(empty_vhost, topology)


def test_declare_follows_the_configuration_it_is_given(empty_vhost: Settings) -> None:
    env_settings = load_settings({"RABBITMQ_URL": empty_vhost.rabbitmq_url,
                                  "CARGO_TASK_QUEUE": "jobs", "CARGO_DELIVERY_LIMIT": "2"})
    declare = cargoctl(empty_vhost, "topology", "declare",
                       CARGO_TASK_QUEUE="jobs", CARGO_DELIVERY_LIMIT="2")

    assert declare.returncode == 0, declare.stderr
    assert_vhost_holds_exactly(empty_vhost, build_topology(env_settings))


def test_declare_against_an_unreachable_port_fails_fast_with_a_clear_message() -> None:
    port = free_port()
    settings = load_settings({"RABBITMQ_URL": f"amqp://guest:pw-never-shown@127.0.0.1:{port}/"})
    started = time.monotonic()

    declare = cargoctl(settings, "topology", "declare", "--timeout", "2")

    assert declare.returncode == 1
    assert time.monotonic() - started < 20
    assert f"127.0.0.1:{port}/ is unreachable after 2s" in declare.stderr
    assert "Traceback" not in declare.stdout + declare.stderr
    assert "pw-never-shown" not in declare.stdout + declare.stderr


def test_declare_in_a_vhost_that_does_not_exist_says_so(rabbitmq: Settings) -> None:
    vhost = f"cargo-missing-{uuid.uuid4().hex[:8]}"
    settings = load_settings({"RABBITMQ_URL": url_with_vhost(base_url(), vhost)})

    declare = cargoctl(settings, "topology", "declare", "--timeout", "5")

    assert declare.returncode == 1
    assert f"vhost {vhost!r} does not exist" in declare.stderr
    assert "Traceback" not in declare.stderr


def test_declare_over_a_queue_with_other_arguments_names_the_conflict(
    empty_vhost: Settings,
) -> None:
    async def declare_classic_queue() -> None:
        connection = await aio_pika.connect(empty_vhost.rabbitmq_url)
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue(empty_vhost.task_queue, durable=True)

    run(declare_classic_queue())

    declare = cargoctl(empty_vhost, "topology", "declare")

    assert declare.returncode == 1
    assert "PRECONDITION_FAILED" in declare.stderr
    assert f"queue '{empty_vhost.task_queue}'" in declare.stderr
    assert "Traceback" not in declare.stderr
