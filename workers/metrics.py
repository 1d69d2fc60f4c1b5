"""The worker's own Prometheus metrics, served by its main process.

Counted where the thing happens, once, and always in the worker's main
process, so the prefork pool needs no multiprocess mode: Celery reports every
task's progress back to the main process (``workers.request.CargoRequest``
counts received, started, succeeded, failed, retried, rejected and revoked
there, with the runtime Celery measured in the child). The main process also
dead-letters every message (a task's failure, the memory guard, poison) and
its dead-letter watcher counts what RabbitMQ dead-lettered itself, so summing
over workers never double-counts. ``CARGO_WORKER_METRICS_PORT`` (0: off) is
where Prometheus scrapes them.

The ``celery_*`` names and labels are celery-exporter's, so its dashboards and
the celery-mixin alerts read them unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

log = structlog.get_logger(__name__)

TASK_LABELS = ["name", "hostname", "queue_name"]
RUNTIME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0, 600.0, 1800.0, 3600.0)
# Celery's task event types (``Request.send_event``) -> the counter they bump.
EVENT_COUNTERS = {
    "task-started": "started",
    "task-succeeded": "succeeded",
    "task-failed": "failed",
    "task-retried": "retried",
    "task-rejected": "rejected",
    "task-revoked": "revoked",
}


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.dead_lettered_total = Counter(
            "cargo_dead_lettered_total", "Tasks dead-lettered, by task queue and reason",
            ["queue", "reason"], registry=r)
        self.child_memory = Gauge(
            "cargo_worker_child_memory_bytes",
            "Resident memory of the largest pool process running a task (memory guard)",
            registry=r)
        self.heartbeat = Gauge(
            "cargo_worker_heartbeat_timestamp_seconds",
            "Unix time the worker's consumer loop last ran (the liveness heartbeat)",
            registry=r)
        self.watch_dropped_total = Counter(
            "cargo_dead_letter_notices_dropped_total",
            "Dead-letter notices (<queue>.XQ.watch) the watcher could not read and dropped",
            ["error"], registry=r)
        self.broker_connected = Gauge(
            "cargo_worker_broker_connected", "1 while the worker's consumer is connected",
            registry=r)
        self.counters = {
            "received": Counter("celery_task_received_total",
                                "Tasks the worker received", TASK_LABELS, registry=r),
            "started": Counter("celery_task_started_total",
                               "Tasks a pool process started", TASK_LABELS, registry=r),
            "succeeded": Counter("celery_task_succeeded_total",
                                 "Tasks that succeeded", TASK_LABELS, registry=r),
            "failed": Counter("celery_task_failed_total",
                              "Task runs that failed and were not retried",
                              [*TASK_LABELS, "exception"], registry=r),
            "retried": Counter("celery_task_retried_total",
                               "Task runs that failed and were retried", TASK_LABELS,
                               registry=r),
            "rejected": Counter("celery_task_rejected_total",
                                "Tasks that rejected their own message", TASK_LABELS,
                                registry=r),
            "revoked": Counter("celery_task_revoked_total",
                               "Tasks revoked (or expired) before or while running",
                               TASK_LABELS, registry=r),
        }
        self.runtime = Histogram(
            "celery_task_runtime", "Seconds a successful task ran (measured in the pool process)",
            TASK_LABELS, buckets=RUNTIME_BUCKETS, registry=r)
        self.queue_wait = Histogram(
            "celery_task_queue_wait_time",
            "Seconds from the worker receiving a task to a pool process starting it",
            TASK_LABELS, buckets=RUNTIME_BUCKETS, registry=r)
        self.worker_up = Gauge(
            "celery_worker_up", "1 while the worker is connected and its consumer loop runs",
            ["hostname"], registry=r)
        self.tasks_active = Gauge(
            "celery_worker_tasks_active", "Tasks the worker's pool is running",
            ["hostname"], registry=r)

    def declare_dead_letters(self, queues: Iterable[str], reasons: Iterable[str]) -> None:
        """Export every (queue, reason) at 0 from the start: a counter that appears
        with its first increment hides that increment from ``increase()``."""
        reasons = list(reasons)
        for queue in queues:
            for reason in reasons:
                self.dead_lettered_total.labels(queue, reason)

    def watch_dropped(self, error: str) -> None:
        self.watch_dropped_total.labels(error).inc()

    def dead_lettered(self, queue: str, reason: str) -> None:
        self.dead_lettered_total.labels(queue, reason).inc()

    def task(self, kind: str, name: str, hostname: str, queue: str,
             exception: str | None = None) -> None:
        """Count one task event (``received``, ``started``, ``failed``, ...)."""
        counter = self.counters[kind]
        if kind == "failed":
            counter.labels(name, hostname, queue, exception or "unknown").inc()
        else:
            counter.labels(name, hostname, queue).inc()

    def task_event(self, event: str, name: str, hostname: str, queue: str,
                   fields: dict[str, Any]) -> None:
        """Count one of Celery's task events as ``Request.send_event`` names it."""
        kind = EVENT_COUNTERS.get(event)
        if kind is None:
            return
        exception = None
        if kind == "failed":
            exception = exception_type(fields.get("exception"))
        self.task(kind, name, hostname, queue, exception)
        runtime = fields.get("runtime")
        if kind == "succeeded" and isinstance(runtime, int | float):
            self.runtime.labels(name, hostname, queue).observe(runtime)

    def bind_worker(self, hostname: str, up: Callable[[], bool],
                    active: Callable[[], int]) -> None:
        self.worker_up.labels(hostname).set_function(lambda: 1.0 if up() else 0.0)
        self.tasks_active.labels(hostname).set_function(active)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    @contextlib.contextmanager
    def serving(self, port: int,
                addr: str = "0.0.0.0") -> Iterator[None]:  # scraped in-cluster
        """Serve ``/metrics`` on ``port`` (0: not at all) until the block ends.

        prometheus-client's threaded server, not prometheus-async's: the worker's
        main process runs Celery's threads and no asyncio loop to serve from. A
        busy port is logged, not fatal: a worker that cannot be scraped still
        runs its tasks, and the missing scrape target raises its own alert.
        """
        server = self._start_server(port, addr) if port != 0 else None
        try:
            yield
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()

    def _start_server(self, port: int, addr: str) -> WSGIServer | None:
        try:
            server, _thread = start_http_server(port, addr, registry=self.registry)
        except OSError as exc:
            log.error("worker.metrics_not_served", port=port, error=str(exc))
            return None
        log.info("worker.metrics_served", url=f"http://{addr}:{port}/metrics")
        return server


def exception_type(text: object) -> str:
    """``"RuntimeError('boom')"`` -> ``"RuntimeError"`` (celery-exporter's label)."""
    if not isinstance(text, str) or not text:
        return "unknown"
    return text.split("(", 1)[0].strip() or "unknown"
