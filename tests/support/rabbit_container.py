"""A throwaway RabbitMQ in Docker for a test session (testcontainers), and the probes
``tests.support.broker_choice`` needs to decide whether to start one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from broker.settings import load_settings
from tests.support.broker_choice import LOCAL_URL, RABBITMQ_IMAGE
from tests.support.eventually import eventually_sync
from tests.support.rabbit import broker_problem

AMQP_PORT = 5672
MANAGEMENT_PORT = 15672


@dataclass(frozen=True)
class BrokerAddress:
    """What ``RABBITMQ_URL`` and ``CARGO_MANAGEMENT_URL`` say for a session's broker."""

    rabbitmq_url: str
    management_url: str


def local_broker_answers() -> bool:
    """The local broker's management API answers (the tests need it as much as AMQP)."""
    return broker_problem(load_settings({"RABBITMQ_URL": LOCAL_URL})) is None


def docker_reachable() -> bool:
    try:
        import docker
    except ImportError:  # testcontainers (the dev extra) not installed
        return False
    try:
        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, no permission, engine down: all mean "no Docker"
        return False


@contextmanager
def rabbitmq_container(ready_timeout: float = 120) -> Iterator[BrokerAddress]:
    """A RabbitMQ container with its management API, removed at the end."""
    from testcontainers.community.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer(RABBITMQ_IMAGE).with_exposed_ports(MANAGEMENT_PORT)
    with container:  # start() returns once AMQP accepts a connection
        host = container.get_container_host_ip()
        address = BrokerAddress(
            rabbitmq_url=f"amqp://guest:guest@{host}:{container.get_exposed_port(AMQP_PORT)}/",
            management_url=f"http://guest:guest@{host}:"
                           f"{container.get_exposed_port(MANAGEMENT_PORT)}",
        )
        settings = load_settings({"RABBITMQ_URL": address.rabbitmq_url,
                                  "CARGO_MANAGEMENT_URL": address.management_url})
        # The management plugin starts a moment after the AMQP listener.
        problems: list[str] = []

        def answered() -> bool:
            problem = broker_problem(settings)
            if problem is not None:
                problems.append(problem)
            return problem is None

        eventually_sync(answered, ready_timeout,
                        lambda: f"the {RABBITMQ_IMAGE} container's management API answering:\n"
                                f"{problems[-1] if problems else ''}",
                        interval=1)
        yield address
