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
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from broker.metrics_endpoint import MetricsEndpoint

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
        self._endpoint = MetricsEndpoint(self.registry, "bridge")

    def handled(self, queue: str, outcome: str, seconds: float | None = None) -> None:
        self.messages.labels(queue, outcome).inc()
        if seconds is not None:
            self.latency.labels(queue).observe(seconds)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:  # scraped in-cluster
        self._endpoint.serve(port, addr)

    def stop(self) -> None:
        self._endpoint.stop()
