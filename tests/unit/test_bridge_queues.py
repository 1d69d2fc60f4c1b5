"""Bridged queues are declared exactly as Dramatiq's RabbitmqBroker declares them.

Compared with the installed ``dramatiq`` package's own argument builders, so a
Dramatiq upgrade that changes them fails here rather than at a redeclare.
"""

from __future__ import annotations

import pytest
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker
from dramatiq.common import dq_name, q_name, xq_name

from bridge.queues import bridged_queue, bridged_queues
from broker.settings import load_settings
from broker.topology import (
    CELERY_DELAYED_DELIVERY_EXCHANGE,
    DEAD_LETTER_EXCHANGE,
    TASKS_EXCHANGE,
    BindingSpec,
    dead_letter_queue_name,
    dramatiq_canonical_queue_name,
    dramatiq_delay_queue_name,
)


@pytest.mark.parametrize("max_priority", [None, 10])
def test_queue_and_delay_queue_have_dramatiqs_exact_arguments(max_priority: int | None) -> None:
    env = {"CARGO_BRIDGE_MAX_PRIORITY": str(max_priority)} if max_priority else {}
    bridged = bridged_queue("default", load_settings(env))
    dramatiq_broker = RabbitmqBroker(url="amqp://127.0.0.1:1/", max_priority=max_priority)
    expected = dramatiq_broker._build_queue_arguments("default")  # type: ignore[no-untyped-call]
    assert bridged.queue.arguments == expected
    assert bridged.delay_queue.arguments == expected
    assert bridged.queue.durable
    assert bridged.delay_queue.durable


def test_the_dead_letter_queue_has_dramatiqs_message_ttl() -> None:
    bridged = bridged_queue("default", load_settings({}))
    assert bridged.dead_letter_queue.arguments == {"x-message-ttl": DEAD_MESSAGE_TTL}
    assert bridged.dead_letter_queue.durable


@pytest.mark.parametrize("name", ["default", "emails", "a.b"])
def test_names_follow_dramatiqs_naming(name: str) -> None:
    bridged = bridged_queue(name, load_settings({}))
    assert bridged.delay_queue.name == dramatiq_delay_queue_name(name) == dq_name(name)
    assert bridged.dead_letter_queue.name == dead_letter_queue_name(name) == xq_name(name)
    for other in (dq_name(name), xq_name(name), name):
        assert dramatiq_canonical_queue_name(other) == q_name(other) == name


def test_cargo_routes_bridged_tasks_and_their_dead_letters_by_the_dramatiq_queue_name() -> None:
    bridged = bridged_queue("default", load_settings({}))
    assert bridged.task_queue_bindings == (BindingSpec(TASKS_EXCHANGE, "default"),
                                           BindingSpec(TASKS_EXCHANGE, "#.default"))
    assert [(b.source, b.destination, b.routing_key) for b in bridged.exchange_bindings] == [
        (CELERY_DELAYED_DELIVERY_EXCHANGE, TASKS_EXCHANGE, "#.default")]
    assert bridged.dead_letter_queue.bindings == (BindingSpec(DEAD_LETTER_EXCHANGE,
                                                              "default.XQ"),)


def test_the_bridge_consumes_each_queue_and_its_delay_queue() -> None:
    queues = bridged_queues(load_settings({"CARGO_BRIDGE_QUEUES": "default,emails"}))
    assert [s.name for q in queues for s in q.consumed] == [
        "default", "default.DQ", "emails", "emails.DQ"]


def test_a_bridged_queue_may_not_be_cargos_own_task_queue() -> None:
    with pytest.raises(ValueError, match="Cargo's own queue 'cargo'"):
        bridged_queues(load_settings({"CARGO_BRIDGE_QUEUES": "default,cargo"}))
