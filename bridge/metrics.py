"""The bridge's Prometheus metrics, on its own registry and port (``CARGO_BRIDGE_METRICS_PORT``).

- ``cargo_bridge_messages_total{queue,outcome}``: Dramatiq messages taken off a
  bridged queue, by what became of them: ``bridged`` (published to Cargo,
  confirmed, then acknowledged), ``poison`` (dead-lettered into ``<queue>.XQ``),
  ``requeued`` (Cargo's queue did not confirm: returned to the Dramatiq queue to
  try again), ``rejected`` (poison that could not be published to ``<queue>.XQ``:
  RabbitMQ dead-lettered it there itself).
- ``cargo_bridge_translation_seconds{queue}``: from the delivery of a Dramatiq
  message to its acknowledgement (parse, translate, publish, confirm): the
  latency the bridge adds.
- ``cargo_bridge_connected``: 1 while connected with every bridged queue consumed.

:meth:`BridgeMetrics.serving` serves them on the bridge's event loop with
prometheus-async (no thread of its own). A busy port is logged, not fatal: a
bridge that cannot be scraped still does its work, and the missing scrape
target raises its own alert.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import structlog
from prometheus_async.aio.web import start_http_server
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

log = structlog.get_logger(__name__)

OUTCOMES = ("bridged", "poison", "requeued", "rejected")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0)


class BridgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter("cargo_bridge_messages", "Dramatiq messages handled by the bridge",
                                ["queue", "outcome"], registry=self.registry)
        self.latency = Histogram("cargo_bridge_translation_seconds",
                                 "Delivery of a Dramatiq message to its acknowledgement",
                                 ["queue"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.connected = Gauge("cargo_bridge_connected",
                               "1 while the bridge consumes every bridged queue",
                               registry=self.registry)

    def handled(self, queue: str, outcome: str, seconds: float | None = None) -> None:
        self.messages.labels(queue, outcome).inc()
        if seconds is not None:
            self.latency.labels(queue).observe(seconds)

    @contextlib.asynccontextmanager
    async def serving(self, port: int,
                      addr: str = "0.0.0.0") -> AsyncIterator[None]:  # scraped in-cluster
        """Serve ``/metrics`` on ``port`` (0: not at all) until the block ends."""
        async with contextlib.AsyncExitStack() as stack:
            if port != 0:
                # prometheus-async serves the process's default registry only: the
                # bridge's own is attached to it while served (one bridge a process).
                REGISTRY.register(self.registry)
                stack.callback(REGISTRY.unregister, self.registry)
                try:
                    server = await start_http_server(addr=addr, port=port)
                except OSError as exc:
                    log.error("bridge.metrics_not_served", port=port, error=str(exc))
                else:
                    stack.push_async_callback(server.close)
                    log.info("bridge.metrics_served", url=f"http://{addr}:{port}/metrics")
            yield
