"""The gateway's Prometheus metrics, on a registry owned by the app (no globals).

Counters here count only what *this* replica did (its own submissions), so
summing over replicas never double-counts; per-task outcome counters come from
the workers, not from the gateways that all read the same stream.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from broker.events import TaskEvent, utc_now

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[str, str, str], tuple[Any, Any, Any]] = {}
        self.hostname = socket.gethostname()
        self.submissions = Counter(
            "cargo_submissions_total", "Task submissions by outcome",
            ["name", "outcome"], registry=self.registry)
        self.publish_latency = Histogram(
            "cargo_publish_latency_seconds", "Time from publish to broker confirm",
            ["outcome"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.sent = Counter(
            "celery_task_sent_total", "Tasks sent to the broker (celery-exporter compatible)",
            ["name", "hostname", "queue_name"], registry=self.registry)
        self.fanout_lag = Histogram(
            "cargo_event_fanout_lag_seconds",
            "Time from an event's timestamp to this gateway reading it from the stream",
            buckets=LAG_BUCKETS, registry=self.registry)
        self.ws_connections = Gauge(
            "cargo_ws_connections", "Open WebSocket connections", registry=self.registry)
        self.ws_subscriptions = Gauge(
            "cargo_ws_subscriptions", "WebSocket subscriptions (task ids plus 'all')",
            registry=self.registry)
        self.tasks_tracked = Gauge(
            "cargo_gateway_tasks_tracked", "Tasks whose latest state this replica holds",
            registry=self.registry)
        self.broker_connected = Gauge(
            "cargo_gateway_broker_connected", "1 while connected with topology declared",
            registry=self.registry)

        # Dead letters (gateway/deadletters.py): the depth is the same on every
        # replica (RabbitMQ's count), so aggregate with max, not sum.
        self.dead_letter_depth = Gauge(
            "cargo_dead_letter_queue_depth",
            "Messages in each task queue's dead-letter queue (<queue>.XQ), read at scrape time",
            ["queue"], registry=self.registry)

        # The task queues as RabbitMQ counts them (celery-exporter's names): the
        # same on every replica, aggregate with max.
        self.queue_length = Gauge(
            "celery_queue_length", "Ready messages in each task queue, read at scrape time",
            ["queue_name"], registry=self.registry)
        self.queue_consumers = Gauge(
            "celery_active_consumer_count", "Consumers on each task queue, read at scrape time",
            ["queue_name"], registry=self.registry)
        # Answers the gateway itself turned into a 500 (a bug; never a client's fault).
        self.internal_errors = Counter(
            "cargo_gateway_internal_errors_total", "Requests answered 500 internal_error",
            registry=self.registry)

    def bind(self, *, connections: Callable[[], int], subscriptions: Callable[[], int],
             tasks: Callable[[], int], broker_ready: Callable[[], bool]) -> None:
        self.ws_connections.set_function(connections)
        self.ws_subscriptions.set_function(subscriptions)
        self.tasks_tracked.set_function(tasks)
        self.broker_connected.set_function(lambda: 1.0 if broker_ready() else 0.0)

    def observe_submission(self, name: str, queue: str, outcome: str, seconds: float) -> None:
        # Label children are cached: .labels() takes a lock and builds a key per call.
        # bench.submit C=32: with the aiormq publish, ~3,600 -> ~4,100/s (RESULTS.md
        # 'Before: batched `queued` events, uvloop, aiormq publish').
        key = (name, queue, outcome)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.submissions.labels(name, outcome),
                self.publish_latency.labels(outcome),
                self.sent.labels(name, self.hostname, queue) if outcome == "accepted" else None,
            )
        submissions, latency, sent = children
        submissions.inc()
        latency.observe(seconds)
        if sent is not None:
            sent.inc()

    def observe_event(self, event: TaskEvent, now: datetime | None = None) -> None:
        """``now``: the read time, when the caller has one for a whole stream message."""
        lag = ((now or utc_now()) - event.ts).total_seconds()
        if lag >= 0:
            self.fanout_lag.observe(lag)

    def render(self) -> bytes:
        # Served by the gateway's own app (GET /metrics), not by prometheus-async's
        # handler: that one renders the process's default registry, and each app
        # owns its registry (tests run several gateways in one process).
        return generate_latest(self.registry)
