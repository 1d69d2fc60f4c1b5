"""gateway.queue_stats without a broker: which queues GET /queues lists, in which order,
and what it makes of the management API's queue listing."""

from __future__ import annotations

from typing import Any

import pytest

from broker.settings import load_settings
from broker.topology import build_topology
from gateway.queue_stats import (
    QueueFigures,
    is_cargo_task_queue,
    parse_queues,
    queue_items,
    task_queue_names,
)

SETTINGS = load_settings({"RABBITMQ_URL": "amqp://guest:guest@rabbit:5672/unit"})


def declared(queue: str) -> dict[str, Any]:
    """The management API's entry for every queue of a topology with ``queue`` in it."""
    return {spec.name: {"name": spec.name, "arguments": spec.arguments, "consumers": 0,
                        "messages_ready": 0, "messages_unacknowledged": 0}
            for spec in build_topology(SETTINGS, task_queues=(queue,)).queues}


def test_parse_queues_reads_the_figures_and_takes_missing_statistics_as_zero() -> None:
    figures = parse_queues([
        {"name": "cargo", "messages_ready": 3, "messages_unacknowledged": 1, "consumers": 2,
         "arguments": {"x-queue-type": "quorum"}},
        # Just declared: RabbitMQ has no statistics for it yet.
        {"name": "reports", "arguments": {}},
        {"name": "odd", "messages_ready": None, "messages_unacknowledged": -4,
         "consumers": True, "arguments": "?"},
    ])
    assert figures == {
        "cargo": QueueFigures(3, 1, 2, {"x-queue-type": "quorum"}),
        "reports": QueueFigures(0, 0, 0, {}),
        "odd": QueueFigures(0, 0, 0, None),
    }


@pytest.mark.parametrize("listing", [{"error": "not_found"}, [{"messages_ready": 1}], ["cargo"],
                                     None])
def test_parse_queues_refuses_anything_but_a_queue_listing(listing: Any) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_queues(listing)


def test_only_queues_declared_as_cargo_task_queues_count_as_such() -> None:
    on_broker = parse_queues(list(declared("reports").values()))
    assert sorted(n for n, f in on_broker.items() if is_cargo_task_queue(n, f)) == [
        "cargo", "reports"]
    # Dramatiq's own queue dead-letters to <queue>.XQ too, but through the default exchange.
    dramatiq = QueueFigures(arguments={"x-dead-letter-exchange": "",
                                       "x-dead-letter-routing-key": "default.XQ"})
    assert not is_cargo_task_queue("default", dramatiq)
    # Another queue's dead-letter routing, or a name no task queue may have.
    cargo_args = on_broker["cargo"].arguments
    assert not is_cargo_task_queue("copy", QueueFigures(arguments=cargo_args))
    assert not is_cargo_task_queue("amq.x", QueueFigures(arguments={
        "x-dead-letter-exchange": "cargo.dlx", "x-dead-letter-routing-key": "amq.x.XQ"}))


def test_task_queue_names_put_the_topology_first_then_the_others_sorted_once_each() -> None:
    on_broker = parse_queues([*declared("zeta").values(), *declared("alpha").values()])
    names = task_queue_names(["cargo"], ["reports", "alpha", "cargo"], on_broker)
    assert names == ["cargo", "alpha", "reports", "zeta"]


def test_queue_items_show_each_queues_dead_letters_and_zeros_for_what_does_not_exist() -> None:
    on_broker = {"cargo": QueueFigures(3, 1, 2), "cargo.XQ": QueueFigures(5, 0, 0)}
    assert queue_items(["cargo", "reports"], on_broker) == [
        {"name": "cargo", "ready": 3, "unacked": 1, "consumers": 2,
         "dead_letter": {"name": "cargo.XQ", "ready": 5}},
        {"name": "reports", "ready": 0, "unacked": 0, "consumers": 0,
         "dead_letter": {"name": "reports.XQ", "ready": 0}},
    ]
