"""Celery's native delayed delivery in Cargo's topology: exactly what kombu declares.

kombu's own declaration functions run against a recording channel (no broker),
so a kombu upgrade that changes a name, an argument or a binding fails here
before RabbitMQ refuses a worker's redeclaration with PRECONDITION_FAILED.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    declare_native_delayed_delivery_exchanges_and_queues,
)

from broker.declare import celery_routing, kombu_task_queues
from broker.definitions import export_definitions
from broker.settings import load_settings
from broker.topology import (
    CELERY_DELAYED_EXCHANGE,
    CELERY_DELAYED_QUEUE_TYPE,
    Topology,
    build_topology,
)


@pytest.fixture
def topo() -> Topology:
    return build_topology(load_settings({"CARGO_TASK_QUEUE": "jobs"}))


def recording_connection() -> tuple[mock.MagicMock, mock.MagicMock]:
    channel = mock.MagicMock(name="channel")
    # kombu lets the transport add its own (expires, TTL…); none are asked for here.
    channel.prepare_queue_arguments.side_effect = lambda arguments, **_: dict(arguments)
    connection = mock.MagicMock(name="connection")
    connection.channel.return_value = channel
    return connection, channel


def kombu_declarations(topology: Topology) -> dict[str, Any]:
    """What a Celery worker declares for delayed delivery (its DelayedDelivery bootstep)."""
    connection, channel = recording_connection()
    queue_type = celery_routing(topology)["broker_native_delayed_delivery_queue_type"]
    declare_native_delayed_delivery_exchanges_and_queues(connection, queue_type)
    for queue in kombu_task_queues(topology):
        bind_queue_to_native_delayed_delivery_exchange(connection, queue)
    calls = channel.mock_calls
    return {
        "exchanges": {c.kwargs["exchange"]: (c.kwargs["type"], c.kwargs["durable"],
                                             c.kwargs["arguments"] or {})
                      for c in calls if c[0] == "exchange_declare"},
        "queues": {c.kwargs["queue"]: (c.kwargs["durable"], c.kwargs["arguments"])
                   for c in calls if c[0] == "queue_declare"},
        "queue_bindings": {(c.kwargs["exchange"], c.kwargs["queue"], c.kwargs["routing_key"])
                           for c in calls if c[0] == "queue_bind"},
        "exchange_bindings": {(c.kwargs["source"], c.kwargs["destination"],
                               c.kwargs["routing_key"])
                              for c in calls if c[0] == "exchange_bind"},
    }


def test_cargo_declares_every_delayed_delivery_exchange_queue_and_binding_kombu_declares(
    topo: Topology,
) -> None:
    kombu = kombu_declarations(topo)
    exchanges = {e.name: (e.type, e.durable, e.arguments) for e in topo.exchanges}
    queues = {q.name: (q.durable, q.arguments) for q in topo.queues}
    queue_bindings = {(b.exchange, q.name, b.routing_key) for q in topo.queues for b in q.bindings}
    exchange_bindings = {(b.source, b.destination, b.routing_key)
                         for b in topo.exchange_bindings}

    assert len(kombu["queues"]) == 28
    assert {name: exchanges.get(name) for name in kombu["exchanges"]} == kombu["exchanges"]
    assert {name: queues.get(name) for name in kombu["queues"]} == kombu["queues"]
    assert kombu["queue_bindings"] <= queue_bindings
    assert kombu["exchange_bindings"] == exchange_bindings


def test_the_delay_levels_are_quorum_queues_and_the_countdown_exchange_is_their_top_level(
    topo: Topology,
) -> None:
    assert CELERY_DELAYED_QUEUE_TYPE == "quorum"
    assert {q.queue_type for q in topo.delayed_queues} == {"quorum"}
    assert topo.delayed_queues[0].name == CELERY_DELAYED_EXCHANGE == "celery_delayed_27"
    assert celery_routing(topo)["broker_native_delayed_delivery_queue_type"] == "quorum"


def test_the_definitions_export_carries_the_exchange_to_exchange_bindings(
    topo: Topology,
) -> None:
    doc = export_definitions(topo)
    exported = {(b["source"], b["destination"], b["routing_key"])
                for b in doc["bindings"] if b["destination_type"] == "exchange"}
    assert exported == {(b.source, b.destination, b.routing_key)
                        for b in topo.exchange_bindings}
    assert ("celery_delayed_delivery", "cargo.tasks", "#.jobs") in exported
    assert {e["name"] for e in doc["exchanges"]} >= {"celery_delayed_0", "celery_delayed_27",
                                                     "celery_delayed_delivery"}
