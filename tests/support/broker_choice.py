"""Which RabbitMQ a test session uses, decided once (``tests/conftest.py``).

In order: the one ``RABBITMQ_URL`` names; else the local broker at
127.0.0.1:5672 if it answers; else, where a Docker engine is reachable, a
throwaway RabbitMQ container for the session (testcontainers); else none, and
the session fails saying how to start one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from broker.settings import mask_passwords

# The chart's RabbitMQ (helm/cargo/ci/operator-cluster-values.yaml), with its management API.
RABBITMQ_IMAGE = "rabbitmq:3.13-management"
LOCAL_URL = "amqp://guest:guest@127.0.0.1:5672/"

NO_BROKER = (
    "No RabbitMQ for the tests: RABBITMQ_URL is unset, nothing answers at 127.0.0.1:5672 "
    "(with its management API on :15672) and no Docker engine is reachable for a "
    f"throwaway {RABBITMQ_IMAGE} container.\n"
    "Start the local broker with `bash scripts/rabbitmq.sh`, start Docker, or point "
    "RABBITMQ_URL (and CARGO_MANAGEMENT_URL) at one."
)


class BrokerSource(StrEnum):
    ENVIRONMENT = "RABBITMQ_URL"
    LOCAL = "the local broker"
    CONTAINER = "a testcontainers RabbitMQ"


@dataclass(frozen=True)
class BrokerChoice:
    """A source, or (``source`` None) why there is none."""

    source: BrokerSource | None
    problem: str | None = None

    def describe(self, url: str | None = None) -> str:
        """One line for the report: which broker, and where when known (no password)."""
        url = mask_passwords(url) if url else None
        if self.source is None:
            return "none (a test that needs one fails saying how to start one)"
        return {
            BrokerSource.ENVIRONMENT: f"RABBITMQ_URL ({url})" if url else "RABBITMQ_URL",
            BrokerSource.LOCAL: "the local broker at 127.0.0.1:5672",
            BrokerSource.CONTAINER: (f"a testcontainers {RABBITMQ_IMAGE} container"
                                     + (f" at {url}" if url else ", started when a test needs it")),
        }[self.source]


def choose_broker(environment_url: str | None, local_answers: Callable[[], bool],
                  docker_reachable: Callable[[], bool]) -> BrokerChoice:
    """The session's broker. The probes are called only as far as the order needs:
    a set ``RABBITMQ_URL`` probes nothing, a local broker that answers never asks Docker."""
    if environment_url:
        return BrokerChoice(BrokerSource.ENVIRONMENT)
    if local_answers():
        return BrokerChoice(BrokerSource.LOCAL)
    if docker_reachable():
        return BrokerChoice(BrokerSource.CONTAINER)
    return BrokerChoice(None, NO_BROKER)
