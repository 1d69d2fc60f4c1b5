"""A worker given several broker addresses (one cluster) must not stall on a dead node.

Celery's ``DelayedDelivery`` consumer step declares the native delayed-delivery
exchanges and queues on *every* URL of a failover ``broker_url``, retrying each
(1 + 3 + 5 s of sleeps) — and it runs on the consumer's thread after every
reconnect. With one node of the cluster down, a worker that just failed over to a
live node stopped consuming for about 17 seconds (measured in
``tests/integration/test_broker_cluster.py``). Exchanges, queues and bindings are
cluster-wide, so declaring them once, on the node the consumer is connected to
(else the next address that answers), is enough.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from celery.utils.log import get_logger
from celery.worker.consumer.delayed_delivery import DelayedDelivery

from workers.consumer import CargoConsumer

logger = get_logger(__name__)


def failover_order(broker_url: str | list[str], host: str | None,
                   port: int | None) -> list[str]:
    """The broker URLs, the one at ``host:port`` (the live connection's) first."""
    urls = broker_url.split(";") if isinstance(broker_url, str) else list(broker_url)
    urls = [url.strip() for url in urls if url.strip()]

    def elsewhere(url: str) -> bool:
        parts = urlsplit(url)
        return (parts.hostname, parts.port or 5672) != (host, port)

    return sorted(urls, key=elsewhere)  # stable: the others keep their order


class ClusterDelayedDelivery(DelayedDelivery):
    """Declare delayed delivery on the connected node, not on every address."""

    def start(self, c: Any) -> None:
        connection = getattr(c, "connection", None)
        urls = failover_order(c.app.conf.broker_url, getattr(connection, "hostname", None),
                              getattr(connection, "port", None))
        if len(urls) <= 1:
            super().start(c)  # one broker: Celery's own behaviour, retries included
            return
        self._validate_configuration(c.app)  # type: ignore[attr-defined]
        for url in urls:
            try:
                self._setup_delayed_delivery(c, url)  # type: ignore[attr-defined]
                return
            except OSError as exc:  # refused, reset, timed out: as Celery retries
                logger.warning("delayed delivery not set up via %s: %s",
                               urlsplit(url).netloc.rsplit("@", 1)[-1], exc)
        super().start(c)  # no node answered: Celery's retries, on every address


class ClusterConsumer(CargoConsumer):
    class Blueprint(CargoConsumer.Blueprint):  # type: ignore[misc,valid-type]
        default_steps = [
            "workers.failover:ClusterDelayedDelivery"
            if step == "celery.worker.consumer.delayed_delivery:DelayedDelivery" else step
            for step in CargoConsumer.Blueprint.default_steps
        ]
