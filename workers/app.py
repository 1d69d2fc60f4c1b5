"""The Celery app: configuration, Cargo's tasks, topology declaration at start.

``create_app(settings)`` builds an app from validated settings. For the plain
Celery CLI (``celery -A workers.app worker``) the module also has a lazy
``app`` attribute: the first access reads the environment, so importing this
module reads nothing, and a configuration error stops the process naming the
variable.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
from collections.abc import Iterable
from typing import Any, cast

import celery
import kombu
from celery import bootsteps
from celery.app.task import Task
from celery.exceptions import Ignore, Reject, Retry

from broker.addresses import kombu_failover_url
from broker.deadletter import Reason
from broker.declare import celery_routing, declare_with_kombu, kombu_queue
from broker.settings import ConfigError, Settings, load_settings
from broker.topology import MAX_RETRIES_HEADER, Topology, build_topology
from workers.catalog import InvalidArguments, TaskSpec, task_specs
from workers.deadletter import CargoRuntime, CargoTask, DeadLetterer, runtime_of
from workers.duplicates import guard_duplicates
from workers.guard import MemoryGuardStep
from workers.heartbeat import Heartbeat, HeartbeatStep
from workers.lifecycle import LifecycleEvents, routing_key_queue
from workers.metrics import WorkerMetrics
from workers.policy import TaskPolicy, resolve_policy
from workers.progress import reporting_to
from workers.watcher import DeadLetterWatcher

log = logging.getLogger(__name__)


def create_app(settings: Settings, extra_specs: Iterable[TaskSpec] = ()) -> celery.Celery:
    """The worker's Celery app; ``extra_specs`` adds tasks beyond the catalog (tests)."""
    topology = build_topology(settings)
    specs = {**task_specs(), **{spec.name: spec for spec in extra_specs}}
    policies = {name: _policy(spec, settings) for name, spec in specs.items()}
    # Each app gets its own task base class, carrying its runtime (below):
    # Cargo's Request reaches it through the task, the consumer through the app.
    class CargoAppTask(CargoTask):
        pass

    task_cls = CargoAppTask
    # workers.duplicates: a task id that already succeeded is not run again.
    guard_duplicates(task_cls, kombu_failover_url(settings.rabbitmq_urls))
    # set_as_current=False: creating an app (tests make several) must not
    # change which app other code sees as Celery's "current" one.
    app: celery.Celery = celery.Celery("cargo", set_as_current=False, task_cls=task_cls)
    app.conf.update(
        # Several RABBITMQ_URL addresses (one cluster): kombu fails over in order.
        broker_url=kombu_failover_url(settings.rabbitmq_urls),
        broker_failover_strategy="round-robin",
        broker_connection_timeout=settings.connect_timeout,
        broker_connection_retry_on_startup=True,
        # Every publish from the workers (events, retries) waits for the
        # broker's confirm, as the gateway's do.
        broker_transport_options={"confirm_publish": True},
        # Queues and routing come from the one topology module, so Celery
        # declares them with exactly the gateway's arguments.
        **celery_routing(topology),
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
        # The memory guard (workers.guard) stops a task as it crosses its limit;
        # this only replaces a child that kept too much after its tasks returned
        # (in KiB of the child's whole resident size: twice the largest limit).
        worker_max_memory_per_child=2 * max(p.memory_limit_bytes for p in policies.values())
        // 1024,
    )
    events = LifecycleEvents(app, publish_timeout=settings.publish_timeout)
    events.connect()
    metrics = WorkerMetrics()
    metrics.declare_dead_letters([spec.name for spec in topology.task_queues],
                                 [reason.value for reason in Reason])
    heartbeat = Heartbeat(settings.worker_heartbeat_file, settings.worker_heartbeat_interval,
                          settings.worker_heartbeat_max_age, metrics)
    task_cls.cargo_runtime = CargoRuntime(
        settings=settings, topology=topology, events=events, metrics=metrics,
        deadletterer=DeadLetterer(app, metrics, settings.publish_timeout), policies=policies,
        heartbeat=heartbeat)
    for spec in specs.values():
        _register(app, spec, policies[spec.name], events, spec.queue or settings.task_queue)
    app.steps["consumer"].add(_declare_topology_step(topology))
    app.steps["consumer"].add(MemoryGuardStep)
    app.steps["consumer"].add(DeadLetterWatcher)
    app.steps["consumer"].add(HeartbeatStep)
    app.steps["worker"].add(_metrics_step(metrics, settings.worker_metrics_port, heartbeat))
    return app


def _policy(spec: TaskSpec, settings: Settings) -> TaskPolicy:
    return resolve_policy(spec.name, settings, max_retries=spec.max_retries,
                          retry_backoff=spec.retry_backoff,
                          retry_backoff_max=spec.retry_backoff_max, time_limit=spec.time_limit,
                          memory_mb=spec.memory_mb, non_retryable=spec.non_retryable)


def _register(app: celery.Celery, spec: TaskSpec, policy: TaskPolicy, events: LifecycleEvents,
              queue: str) -> None:
    def run(task: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:
        # Messages can bypass the gateway (send_task, other producers): apply
        # the gateway's validation here too, and fail like a Python call with
        # bad arguments would, with every problem named.
        try:
            call_args, call_kwargs = spec.validate(list(args), kwargs)
        except InvalidArguments as exc:
            raise TypeError(f"{spec.name}() got invalid arguments: {exc}") from None
        with reporting_to(functools.partial(events.progress, task)):
            try:
                return spec.func(*call_args, **call_kwargs)
            except (Retry, Reject, Ignore):
                raise  # Celery's own control flow
            except Exception as exc:
                retries = task.request.retries or 0
                # A message may carry its own budget (a bridged Dramatiq max_retries).
                budget = policy.retry_budget(getattr(task.request, MAX_RETRIES_HEADER, None))
                if not (policy.retryable(exc) and retries < budget):
                    raise  # dead-lettered with reason failed (workers.deadletter)
                # Exponential backoff with jitter; Celery publishes the retry
                # through RabbitMQ's native delayed delivery (whole seconds, at
                # least one) and acks this message.
                raise task.retry(exc=exc, countdown=math.ceil(policy.delay(retries)),
                                 max_retries=budget,
                                 headers=cast(Any, _own_headers(task)),
                                 **_same_route(task, queue)) from None

    run.__name__ = run.__qualname__ = spec.name
    run.__doc__ = spec.func.__doc__
    # shared=False: Celery would otherwise add the task to every app created
    # later in this process (process-wide state).
    # Validation failures raise TypeError, which is not retried (workers.policy).
    app.task(name=spec.name, bind=True, shared=False, typing=False,
             queue=queue, time_limit=math.ceil(policy.time_limit))(run)


def _same_route(task: Task[Any, Any], queue: str) -> dict[str, Any]:
    """A retry goes back the way the message came: a bridged Dramatiq message
    arrives by its Dramatiq queue's name (so its dead letters go to that
    queue's ``.XQ``), where Celery would route the retry by the task's queue.

    Celery takes a delayed retry's routing key from its queue object, so the
    retry gets the same queue (same name and arguments) bound by that name.
    """
    arrived_by = routing_key_queue(task.request.delivery_info)
    runtime = runtime_of(task)
    if not arrived_by or arrived_by == queue or runtime is None:
        return {}
    same = kombu_queue(runtime.topology.queue(queue), runtime.topology)
    return {"queue": kombu.Queue(same.name, exchange=same.exchange, routing_key=arrived_by,
                                 durable=same.durable, queue_arguments=same.queue_arguments)}


def _own_headers(task: Task[Any, Any]) -> dict[str, Any] | None:
    """Cargo's per-message headers, carried over to the retry's message (celery-types
    says header values are strings; Celery sends any JSON value)."""
    budget = getattr(task.request, MAX_RETRIES_HEADER, None)
    return {MAX_RETRIES_HEADER: budget} if budget is not None else None


def _metrics_step(metrics: WorkerMetrics, port: int,
                  heartbeat: Heartbeat) -> type[bootsteps.StartStopStep]:
    class MetricsServer(bootsteps.StartStopStep):
        """Serves the worker's metrics and writes its heartbeat file, from its main
        process (after the pool forked: no child inherits the threads)."""

        requires = ("celery.worker.components:Pool",)

        def start(self, parent: Any) -> None:
            metrics.serve(port)
            heartbeat.start()

        def stop(self, parent: Any) -> None:
            heartbeat.stop()
            metrics.stop()

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
                log.critical("could not declare the Cargo topology", exc_info=True)
                raise
            log.info("declared the Cargo topology (%d queues)", len(topology.queues))

    return DeclareTopology


@functools.cache
def _default_app() -> celery.Celery:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"cargo worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return create_app(settings)


def __getattr__(name: str) -> celery.Celery:
    # ``celery -A workers.app`` looks up ``workers.app.app``; building it here,
    # on first access, keeps the import free of environment reads.
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
