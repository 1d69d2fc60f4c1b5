"""The Celery app: configuration, the team's tasks, topology declaration at start.

``create_app(settings)`` builds an app from validated settings. For the plain
Celery CLI (``celery -A workers.app worker``) the module also has a lazy
``app`` attribute: the first access reads the environment, so importing this
module reads nothing, and a configuration error stops the process naming the
variable.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import Any

import celery
import structlog
from celery import bootsteps

from broker.addresses import kombu_failover_url
from broker.deadletter import Reason
from broker.declare import celery_routing, declare_with_kombu
from broker.settings import ConfigError, WorkerSettings, load_settings
from broker.topology import Topology, build_topology
from workers.announce import Announcer, AnnounceStep, announcer_step
from workers.base import CargoBaseTask
from workers.deadletterer import DeadLetterer
from workers.duplicates import guard_duplicates
from workers.event_relay import EventRelay, relay_step
from workers.guard import MemoryGuardStep
from workers.heartbeat import Heartbeat, HeartbeatStep
from workers.lifecycle import LifecycleEvents
from workers.logs import log_through_cargo
from workers.metrics import WorkerMetrics
from workers.modules import load_tasks, share_app_attributes, task_queues
from workers.runtime import CargoRuntime
from workers.watcher import DeadLetterWatcher

log = structlog.get_logger(__name__)


def create_app(settings: WorkerSettings) -> celery.Celery:
    """The worker's Celery app, with the tasks of ``CARGO_TASK_MODULES``.

    Raises ConfigError (naming the variable) for a module that does not import
    or a task Cargo cannot run; nothing has touched the broker by then.
    """
    # Each app gets its own task base class, carrying its runtime (below):
    # Cargo's Request reaches it through the task, the consumer through the app.
    class CargoAppTask(CargoBaseTask):
        pass

    task_cls = CargoAppTask
    # workers.duplicates: a task id that already succeeded is not run again.
    guard_duplicates(task_cls, kombu_failover_url(settings.rabbitmq_urls))
    # set_as_current=False: creating an app (tests make several) must not
    # change which app other code sees as Celery's "current" one. task_cls: a
    # plain @shared_task gets Cargo's behaviour (workers.base).
    app: celery.Celery = celery.Celery("cargo", set_as_current=False, task_cls=task_cls)
    # Configured before any task is bound to the app: Celery copies acks_late,
    # serializer, reject_on_worker_lost... from the configuration into each task
    # class when it binds it.
    app.conf.update(
        # Several RABBITMQ_URL addresses (one cluster): kombu fails over in order.
        broker_url=kombu_failover_url(settings.rabbitmq_urls),
        broker_failover_strategy="round-robin",
        broker_connection_timeout=settings.connect_timeout,
        broker_connection_retry_on_startup=True,
        # Every publish from the workers (events, retries) waits for the
        # broker's confirm, as the gateway's do.
        broker_transport_options={"confirm_publish": True},
        # Late acks + reject on worker lost: a task whose worker dies is
        # redelivered, not lost. Prefetch 1: a busy worker does not sit on
        # messages another worker could run.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Quorum queues: no global QoS, ETA through native delayed delivery.
        worker_detect_quorum_queues=True,
        # With acks_late, a task whose connection is gone cannot be acked and
        # will be redelivered anyway; cancel it instead of running it twice.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # The remote-control (pidbox) queue is not exclusive: after a failover the
        # old connection's exclusive queue can outlive it for a moment on the
        # cluster, and redeclaring it failed with 405 RESOURCE_LOCKED, which stopped
        # the worker (seen in tests/integration/test_broker_cluster.py). Unused, it
        # still goes away after control_queue_expires (10 s).
        control_queue_exclusive=False,
        accept_content=["json"],
        task_serializer="json",
        result_serializer="json",
        # No result backend: results travel as events on the events stream.
        result_backend=None,
        task_ignore_result=True,
        # Celery configures logging when nobody else has, but must not remove
        # handlers a host process installed.
        worker_hijack_root_logger=False,
        timezone="UTC",
        enable_utc=True,
        # Poison messages are dead-lettered, not acked or rejected (workers.consumer);
        # delayed delivery is declared on the connected node only (workers.failover).
        worker_consumer="workers.failover:ClusterConsumer",
    )
    # The team's modules are imported now, before anything connects (workers.modules).
    tasks = load_tasks(app, settings)
    policies = {name: task.policy for name, task in tasks.items()}
    # Every loaded task's queue and every queue this worker is told to consume
    # get Cargo's guarantees (quorum, .XQ, delivery and length limits).
    topology = build_topology(settings, task_queues=(*task_queues(tasks),
                                                     *(settings.worker_queue_names or ())))
    app.conf.update(
        # Queues and routing come from the one topology module, so Celery
        # declares them with exactly the gateway's arguments.
        **celery_routing(topology),
        # The memory guard (workers.guard) stops a task as it crosses its limit;
        # this only replaces a child that kept too much after its tasks returned
        # (in KiB of the child's whole resident size: twice the largest limit).
        worker_max_memory_per_child=2 * max(p.memory_limit_bytes for p in policies.values())
        // 1024,
    )
    # What this worker consumes: CARGO_WORKER_QUEUES, else its tasks' queues. Selected
    # here too, so the plain Celery CLI (no -Q) consumes the same; -Q still overrides.
    app.amqp.queues.select(list(settings.worker_queue_names or task_queues(tasks)))
    relay = EventRelay(app.conf.broker_url, settings.publish_timeout,
                       settings.events_relay_min_running)
    events = LifecycleEvents(app, publish_timeout=settings.publish_timeout,
                             merge_window=settings.events_merge_window, relay=relay)
    events.connect()
    metrics = WorkerMetrics()
    metrics.declare_dead_letters([spec.name for spec in topology.task_queues],
                                 [reason.value for reason in Reason])
    heartbeat = Heartbeat(settings.worker_heartbeat_file, settings.worker_heartbeat_interval,
                          settings.worker_heartbeat_max_age, metrics)
    task_cls.cargo_runtime = CargoRuntime(
        settings=settings, topology=topology, events=events, metrics=metrics,
        deadletterer=DeadLetterer(app, metrics, settings.publish_timeout), policies=policies,
        heartbeat=heartbeat, tasks=tasks, relay=relay)
    share_app_attributes(app, tasks, task_cls)
    announcer = Announcer(app, settings, topology, tasks)
    app.cargo_announcer = announcer  # type: ignore[attr-defined]  # read by AnnounceStep
    app.steps["consumer"].add(_declare_topology_step(topology))
    app.steps["consumer"].add(MemoryGuardStep)
    app.steps["consumer"].add(DeadLetterWatcher)
    app.steps["consumer"].add(HeartbeatStep)
    app.steps["consumer"].add(AnnounceStep)
    app.steps["consumer"].add(relay_step(relay))
    app.steps["worker"].add(_metrics_step(metrics, settings.worker_metrics_port, heartbeat))
    app.steps["worker"].add(announcer_step(announcer))
    log_through_cargo(app, settings)  # Celery's lines in Cargo's dialect (workers.logs)
    return app


def _metrics_step(metrics: WorkerMetrics, port: int,
                  heartbeat: Heartbeat) -> type[bootsteps.StartStopStep]:
    class MetricsServer(bootsteps.StartStopStep):
        """Serves the worker's metrics and writes its heartbeat file, from its main
        process (after the pool forked: no child inherits the threads)."""

        requires = ("celery.worker.components:Pool",)

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self._stack = contextlib.ExitStack()

        def start(self, parent: Any) -> None:
            # Left in reverse: the heartbeat file goes before the metrics server.
            self._stack.enter_context(metrics.serving(port))
            self._stack.enter_context(heartbeat.writing())

        def stop(self, parent: Any) -> None:
            self._stack.close()

    return MetricsServer


def _declare_topology_step(topology: Topology) -> type[bootsteps.StartStopStep]:
    class DeclareTopology(bootsteps.StartStopStep):
        """Declare the whole topology on the consumer's connection, at every (re)connect.

        Celery itself only declares the task queues; the events exchange and
        stream and the dead-letter queues must exist even if no gateway ever ran.
        """

        requires = ("celery.worker.consumer.connection:Connection",)

        def start(self, parent: Any) -> None:
            try:
                declare_with_kombu(parent.connection, topology)
            except Exception:
                log.critical("worker.topology_not_declared", exc_info=True)
                raise
            log.info("worker.topology_declared", queues=len(topology.queues))

    return DeclareTopology


@functools.cache
def _default_app() -> celery.Celery:
    try:
        settings = load_settings(kind=WorkerSettings)
    except ConfigError as exc:
        print(f"cargo worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        return create_app(settings)
    except ConfigError as exc:
        print(f"cargo worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def __getattr__(name: str) -> celery.Celery:
    # ``celery -A workers.app`` looks up ``workers.app.app``; building it here,
    # on first access, keeps the import free of environment reads.
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
