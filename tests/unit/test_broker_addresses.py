"""RABBITMQ_URL naming several nodes of one cluster: parsing, errors, failover order."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from kombu.utils.imports import symbol_by_name

from broker.addresses import AddressRotation, kombu_failover_url, split_broker_urls
from broker.settings import ConfigError, load_settings
from workers.app import create_app
from workers.consumer import CargoConsumer
from workers.failover import ClusterDelayedDelivery, failover_order

THREE = ("amqp://u:p@rabbit-0:5672/prod,amqp://u:p@rabbit-1:5672/prod,"
         "amqp://u:p@rabbit-2:5672/prod")


def test_a_single_url_keeps_working_as_before() -> None:
    settings = load_settings({"RABBITMQ_URL": "amqps://u:p@rabbit.example:5671/prod"})
    assert settings.rabbitmq_urls == ("amqps://u:p@rabbit.example:5671/prod",)
    assert settings.vhost == "prod"
    assert settings.management_api == "https://u:p@rabbit.example:15672"


def test_comma_separated_urls_are_the_nodes_of_one_cluster_in_order() -> None:
    settings = load_settings({"RABBITMQ_URL": THREE.replace(",", " , ")})
    assert settings.rabbitmq_urls == tuple(THREE.split(","))
    assert settings.vhost == "prod"
    # the management API defaults to the first node's host
    assert settings.management_api == "http://u:p@rabbit-0:15672"


@pytest.mark.parametrize(("value", "says"), [
    ("amqp://h1/,http://h2/", "address 2 must be an amqp:// or amqps:// URL"),
    ("amqp://h1/,", "no empty entry"),
    ("amqp://h1/;amqp://h2/", "separate several addresses with commas"),
    ("amqp://h1/a,amqp://h2/b", "same vhost"),
    ("amqp://h1/,amqp://h1/", "same address twice"),
    ("amqp://h1/,amqp://h2:port/", "address 2 has a malformed port"),
])
def test_each_malformed_address_list_is_refused_naming_rabbitmq_url(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"RABBITMQ_URL": value})
    assert "RABBITMQ_URL" in str(error.value)
    assert says in str(error.value)


def test_kombu_gets_the_addresses_as_a_semicolon_failover_url() -> None:
    urls = split_broker_urls(THREE)
    assert kombu_failover_url(urls) == THREE.replace(",", ";")
    assert kombu_failover_url(urls[:1]) == urls[0]


def test_the_celery_worker_fails_over_across_every_address_in_order() -> None:
    app = create_app(load_settings({"RABBITMQ_URL": THREE}))
    assert app.conf.broker_url == THREE.replace(",", ";")
    assert app.conf.broker_failover_strategy == "round-robin"
    with app.connection_for_write() as connection:  # not connected: only parsed
        assert [alt.split("@")[1] for alt in connection.alt] == [
            "rabbit-0:5672/prod", "rabbit-1:5672/prod", "rabbit-2:5672/prod"]


def test_the_connect_loop_stays_on_a_working_address_and_moves_on_after_a_failure() -> None:
    rotation = AddressRotation(split_broker_urls(THREE))
    assert rotation.current.endswith("rabbit-0:5672/prod")
    assert rotation.current.endswith("rabbit-0:5672/prod")  # no failure: no move
    rotation.failed()
    assert rotation.current.endswith("rabbit-1:5672/prod")
    rotation.failed()
    rotation.failed()
    assert rotation.current.endswith("rabbit-0:5672/prod")  # wraps around


def test_one_address_is_retried_after_a_failure() -> None:
    rotation = AddressRotation(("amqp://h/",))
    rotation.failed()
    assert rotation.current == "amqp://h/"


def test_delayed_delivery_is_declared_on_the_connected_node_and_never_waits_on_a_dead_one(
) -> None:
    """Celery's step would try (and sleep on) every address after each reconnect."""
    app = create_app(load_settings({"RABBITMQ_URL": THREE}))
    step = ClusterDelayedDelivery.__new__(ClusterDelayedDelivery)
    tried: list[str] = []

    def setup(c: object, url: str) -> None:
        tried.append(url.split("@")[1])
        if url.split("@")[1].startswith("rabbit-1"):
            raise ConnectionRefusedError("the node went away")

    step._setup_delayed_delivery = setup  # type: ignore[attr-defined]
    consumer = SimpleNamespace(app=app, connection=SimpleNamespace(hostname="rabbit-2",
                                                                    port=5672))
    step.start(consumer)
    assert tried == ["rabbit-2:5672/prod"]

    tried.clear()  # connected node refuses: the next address, and no more
    consumer.connection = SimpleNamespace(hostname="rabbit-1", port=5672)
    step.start(consumer)
    assert tried == ["rabbit-1:5672/prod", "rabbit-0:5672/prod"]


def test_the_worker_uses_cargos_consumer_with_the_cluster_delayed_delivery_step() -> None:
    app = create_app(load_settings({"RABBITMQ_URL": THREE}))
    consumer_cls = symbol_by_name(app.conf.worker_consumer)
    assert issubclass(consumer_cls, CargoConsumer)
    steps = consumer_cls.Blueprint.default_steps
    assert "workers.failover:ClusterDelayedDelivery" in steps
    assert not any(step.endswith(":DelayedDelivery") for step in steps)
    assert failover_order("amqp://a:1/;amqp://b:2/;amqp://c:3/", "c", 3) == [
        "amqp://c:3/", "amqp://a:1/", "amqp://b:2/"]
