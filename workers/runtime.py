"""The worker's runtime: what Cargo's worker-side pieces share, one per Celery app, and how
a task or the app finds it (:func:`runtime_of`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import celery
import kombu
import structlog

from broker.deadletter import Reason, identify
from broker.events import TaskEvent, TaskState, utc_now
from broker.settings import WorkerSettings
from broker.topology import Topology
from workers.deadletterer import DeadLetterer, body_of
from workers.event_relay import EventRelay
from workers.lifecycle import LifecycleEvents, routing_key_queue
from workers.metrics import WorkerMetrics
from workers.policy import TaskPolicy

if TYPE_CHECKING:
    from workers.base import LoadedTask
    from workers.heartbeat import Heartbeat

log = structlog.get_logger(__name__)


@dataclass
class CargoRuntime:
    """What Cargo's worker-side pieces share, one per Celery app."""

    settings: WorkerSettings
    topology: Topology
    events: LifecycleEvents
    metrics: WorkerMetrics
    deadletterer: DeadLetterer
    policies: dict[str, TaskPolicy] = field(default_factory=dict)
    heartbeat: Heartbeat | None = None
    relay: EventRelay | None = None
    # The tasks this worker loaded (workers.modules), by name.
    tasks: dict[str, LoadedTask] = field(default_factory=dict)

    def memory_limit(self, task_name: str) -> int:
        policy = self.policies.get(task_name)
        if policy is not None:
            return policy.memory_limit_bytes
        return self.settings.memory_limit_mb * 1024 * 1024

    def queue_of(self, delivery_info: Mapping[str, Any] | None) -> str:
        return routing_key_queue(delivery_info) or self.settings.task_queue

    def emit(self, task_id: str | None, name: str | None, state: TaskState, *,
             queue: str, reason: str | None = None, error: dict[str, str] | None = None,
             retries: int | None = None, hostname: str | None = None) -> None:
        """Publish a lifecycle event (failures are logged, never raised)."""
        if task_id is None:
            # The same line as workers.lifecycle's for an event without a task id.
            log.warning("events.no_task_id", state=str(state), task_name=name, queue=queue)
            return
        self.events.publish(TaskEvent(
            task_id=task_id, name=name or "unknown", state=state, ts=utc_now(),
            reason=str(reason) if reason is not None else None, error=error,
            retries=retries, queue=queue, hostname=hostname))

    def dead_letter_message(self, message: kombu.Message, reason: Reason, problem: str,
                            hostname: str | None) -> None:
        """Dead-letter a message no task will run (poison), then ack it and say so."""
        queue = self.queue_of(message.delivery_info)
        error = {"type": "PoisonMessage", "message": problem}
        if not self.deadletterer.publish(message, queue, reason, error):
            # Not lost and not acked: redelivered, and dead-lettered by RabbitMQ
            # with delivery_limit if this keeps failing.
            message.reject(requeue=True)
            return
        message.ack()
        task_id, name = identify(message.headers, body_of(message), message.properties)
        log.error("deadletter.poison", queue=queue, reason=str(reason), problem=problem)
        self.emit(task_id, name, TaskState.DEAD_LETTERED, queue=queue, reason=reason,
                  error=error, hostname=hostname)


def runtime_of(app_or_task: Any) -> CargoRuntime | None:
    """The runtime of a Celery app or task (None for tasks that are not Cargo's)."""
    holder = app_or_task.Task if isinstance(app_or_task, celery.Celery) else app_or_task
    runtime = getattr(holder, "cargo_runtime", None)
    return runtime if isinstance(runtime, CargoRuntime) else None
