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
import sys
from typing import Any

import celery
from celery import bootsteps
from celery.app.task import Task

from broker.declare import celery_routing, declare_with_kombu
from broker.settings import ConfigError, Settings, load_settings
from broker.topology import Topology, build_topology
from workers.catalog import InvalidArguments, TaskSpec, task_specs
from workers.lifecycle import LifecycleEvents
from workers.progress import reporting_to

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> celery.Celery:
    topology = build_topology(settings)
    # set_as_current=False: creating an app (tests make several) must not
    # change which app other code sees as Celery's "current" one.
    app = celery.Celery("cargo", set_as_current=False)
    app.conf.update(
        broker_url=settings.rabbitmq_url,
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
    )
    events = LifecycleEvents(app, publish_timeout=settings.publish_timeout)
    events.connect()
    for spec in task_specs().values():
        _register(app, spec, events, spec.queue or settings.task_queue)
    app.steps["consumer"].add(_declare_topology_step(topology))
    return app


def _register(app: celery.Celery, spec: TaskSpec, events: LifecycleEvents, queue: str) -> None:
    def run(task: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:
        # Messages can bypass the gateway (send_task, other producers): apply
        # the gateway's validation here too, and fail like a Python call with
        # bad arguments would, with every problem named.
        try:
            call_args, call_kwargs = spec.validate(list(args), kwargs)
        except InvalidArguments as exc:
            raise TypeError(f"{spec.name}() got invalid arguments: {exc}") from None
        with reporting_to(functools.partial(events.progress, task)):
            return spec.func(*call_args, **call_kwargs)

    run.__name__ = run.__qualname__ = spec.name
    run.__doc__ = spec.func.__doc__
    # shared=False: Celery would otherwise add the task to every app created
    # later in this process (process-wide state).
    app.task(name=spec.name, bind=True, shared=False, typing=False,
             queue=queue)(run)


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
