"""The topology: names, exact queue arguments, and what `cargoctl topology export` writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.definitions import export_definitions
from broker.settings import load_settings
from broker.topology import (
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    EVENTS_STREAM,
    TASKS_EXCHANGE,
    Topology,
    build_topology,
    dead_letter_queue_name,
)
from cargoctl.topology_cmd import redacted, topology


@pytest.fixture(autouse=True)
def no_cargo_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("CARGO_") or name == "RABBITMQ_URL":
            monkeypatch.delenv(name)


@pytest.fixture
def topo() -> Topology:
    return build_topology(load_settings({}))


def test_dead_letters_of_a_queue_go_to_its_dramatiq_style_xq_queue() -> None:
    assert dead_letter_queue_name("cargo") == "cargo.XQ"
    assert dead_letter_queue_name("default") == "default.XQ"


def test_the_task_queue_is_a_quorum_queue_with_exactly_these_arguments(topo: Topology) -> None:
    queue = topo.queue("cargo")
    assert queue.durable
    assert queue.arguments == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "cargo.dlx",
        "x-dead-letter-routing-key": "cargo.XQ",
        "x-dead-letter-strategy": "at-least-once",
        "x-delivery-limit": 5,
        "x-max-length": 100_000,
        "x-overflow": "reject-publish",
    }


def test_at_least_once_dead_lettering_comes_with_reject_publish_overflow(topo: Topology) -> None:
    # RabbitMQ falls back to at-most-once dead-lettering under drop-head overflow.
    for queue in topo.task_queues:
        assert queue.arguments["x-dead-letter-strategy"] == "at-least-once"
        assert queue.arguments["x-overflow"] == "reject-publish"


def test_the_delivery_limit_and_length_limit_follow_the_settings() -> None:
    settings = load_settings({"CARGO_DELIVERY_LIMIT": "3", "CARGO_QUEUE_MAX_LENGTH": "50",
                              "CARGO_TASK_QUEUE": "jobs"})
    queue = build_topology(settings).default_queue
    assert queue.name == "jobs"
    assert queue.arguments["x-delivery-limit"] == 3
    assert queue.arguments["x-max-length"] == 50
    assert queue.arguments["x-dead-letter-routing-key"] == "jobs.XQ"


def test_a_task_queue_is_bound_to_the_tasks_exchange_under_its_own_name(topo: Topology) -> None:
    queue = topo.default_queue
    # ...and under ``#.cargo``, where Celery's delayed delivery hands countdowns back.
    assert [(b.exchange, b.routing_key) for b in queue.bindings] == [
        (TASKS_EXCHANGE, "cargo"), (TASKS_EXCHANGE, "#.cargo")]


def test_each_task_queue_has_a_quorum_dead_letter_queue_bound_to_the_dlx(topo: Topology) -> None:
    for task_queue in topo.task_queues:
        dlq = topo.queue(dead_letter_queue_name(task_queue.name))
        assert dlq.arguments == {"x-queue-type": "quorum"}
        assert [(b.exchange, b.routing_key) for b in dlq.bindings] == [
            (DEAD_LETTER_EXCHANGE, dlq.name)]


def test_dead_letter_queues_are_declared_before_the_queues_that_feed_them(topo: Topology) -> None:
    names = [q.name for q in topo.queues]
    assert names.index("cargo.XQ") < names.index("cargo")


def test_the_events_stream_keeps_events_by_age_and_size() -> None:
    settings = load_settings({"CARGO_EVENTS_MAX_AGE": "2h", "CARGO_EVENTS_MAX_BYTES": "5000000",
                              "CARGO_EVENTS_SEGMENT_BYTES": "1000000"})
    stream = build_topology(settings).events_stream
    assert stream.name == EVENTS_STREAM
    assert stream.arguments == {
        "x-queue-type": "stream",
        "x-max-age": "2h",
        "x-max-length-bytes": 5_000_000,
        "x-stream-max-segment-size-bytes": 1_000_000,
    }
    assert [(b.exchange, b.routing_key) for b in stream.bindings] == [(EVENTS_EXCHANGE, "#")]


def test_the_exchanges_are_durable_with_the_types_routing_needs(topo: Topology) -> None:
    assert {(e.name, e.type, e.durable) for e in topo.exchanges} == {
        ("cargo.tasks", "topic", True),
        ("cargo.dlx", "direct", True),
        ("cargo.events", "topic", True),
        ("cargo.catalog", "fanout", True),
        ("celery_delayed_delivery", "topic", True),
        *((f"celery_delayed_{level}", "topic", True) for level in range(28)),
    }


def test_the_definitions_document_lists_every_object_with_exact_arguments(topo: Topology) -> None:
    doc = export_definitions(topo)
    assert {q["name"]: q["arguments"] for q in doc["queues"]} == {
        q.name: q.arguments for q in topo.queues}
    assert {e["name"]: e["type"] for e in doc["exchanges"]} == {
        e.name: e.type for e in topo.exchanges}
    assert {(b["source"], b["destination"], b["routing_key"]) for b in doc["bindings"]} == {
        *((b.exchange, q.name, b.routing_key) for q in topo.queues for b in q.bindings),
        *((b.source, b.destination, b.routing_key) for b in topo.exchange_bindings)}
    assert "vhosts" not in doc
    assert all("vhost" not in obj for key in ("queues", "exchanges", "bindings")
               for obj in doc[key])


def test_export_prints_pretty_json_definitions_for_the_configured_topology() -> None:
    result = CliRunner().invoke(topology, ["export"], env={"CARGO_TASK_QUEUE": "jobs"})
    assert result.exit_code == 0, result.output
    assert result.output.startswith("{\n  ")
    doc = json.loads(result.output)
    assert doc == export_definitions(build_topology(load_settings({"CARGO_TASK_QUEUE": "jobs"})))


def test_export_with_a_vhost_names_it_in_every_object(tmp_path: Path) -> None:
    out = tmp_path / "definitions.json"
    result = CliRunner().invoke(topology, ["export", "--vhost", "prod", "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["vhosts"] == [{"name": "prod"}]
    assert all(obj["vhost"] == "prod" for key in ("queues", "exchanges", "bindings")
               for obj in doc[key])


def test_export_with_a_malformed_setting_fails_naming_the_variable() -> None:
    result = CliRunner().invoke(topology, ["export"], env={"CARGO_DELIVERY_LIMIT": "0"})
    assert result.exit_code == 2
    assert "CARGO_DELIVERY_LIMIT" in result.output


def test_messages_never_show_the_broker_password() -> None:
    assert redacted("amqp://alice:s3cret@rabbit.example:5672/prod") == (
        "amqp://alice:***@rabbit.example:5672/prod")
    assert redacted("amqp://rabbit.example/") == "amqp://rabbit.example/"
