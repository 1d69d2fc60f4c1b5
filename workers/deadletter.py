"""Dead-lettering in the worker: every failure ends in ``<queue>.XQ`` with a reason.

The worker's main process owns every message (late acks), so it is the one
that dead-letters: it publishes the ORIGINAL message (body and headers, so a
replay runs the same task id) to ``cargo.dlx`` with routing key
``<queue>.XQ`` and Cargo's reason/error/time headers, waits for the broker's
confirm, and only then acknowledges the original. If the publish fails, the
original is requeued instead, never acknowledged: RabbitMQ delivers it again
and, past the queue's delivery limit, dead-letters it itself.

:class:`CargoRequest` (Celery's per-message ``Request``) does this for a task
that failed for good, ran past its hard time limit, or could not be decoded in
the pool; the memory guard (``workers.guard``) and the poison check
(``workers.consumer``) call the same :class:`DeadLetterer`. Once a request is
dead-lettered, whatever Celery reports about it later (the killed child's
``WorkerLostError``, the hard time limit's second callback) only marks it done:
it is never acknowledged twice (a double ack closes the channel) nor requeued.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import celery
import kombu
import psutil
from billiard import einfo
from celery.app.task import Task
from celery.exceptions import (
    Ignore,
    NotRegistered,
    Reject,
    Retry,
    SoftTimeLimitExceeded,
    Terminated,
    TimeLimitExceeded,
    WorkerLostError,
)
from celery.worker.request import Request
from celery.worker.state import task_ready
from kombu.exceptions import ContentDisallowed, DecodeError

from broker.deadletter import Reason, dead_letter_headers, identify
from broker.events import TaskEvent, TaskState, error_of, utc_now
from broker.settings import WorkerSettings
from broker.topology import DEAD_LETTER_EXCHANGE, Topology, dead_letter_queue_name
from workers.event_relay import EventRelay
from workers.lifecycle import LifecycleEvents, routing_key_queue
from workers.metrics import WorkerMetrics
from workers.policy import TaskPolicy

if TYPE_CHECKING:
    from workers.base import LoadedTask
    from workers.heartbeat import Heartbeat

log = logging.getLogger(__name__)

PERSISTENT = 2
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def body_of(message: kombu.Message) -> bytes:
    """The message body as bytes, whatever kombu made of it."""
    body: Any = message.body
    if isinstance(body, bytes):
        return body
    return str(body or "").encode()


def error_for(exc: BaseException) -> dict[str, str]:
    """The ``error`` object of a failure, with a readable message for time limits."""
    error = error_of(exc)
    if isinstance(exc, TimeLimitExceeded) and exc.args:
        error["message"] = f"ran past its hard time limit of {exc.args[0]}s"
    return error


def failure_reason(exc: BaseException) -> Reason | None:
    """The dead-letter reason for a task's exception, or None when Celery's own
    handling stands (a retry, a rejected/ignored/revoked task, a lost worker
    whose message is redelivered)."""
    if isinstance(exc, Retry | Reject | Ignore | Terminated | WorkerLostError
                  | SystemExit | KeyboardInterrupt):
        return None
    if isinstance(exc, TimeLimitExceeded | SoftTimeLimitExceeded):
        return Reason.TIME_LIMIT
    if isinstance(exc, MemoryError):
        return Reason.MEMORY_LIMIT
    if isinstance(exc, DecodeError | ContentDisallowed | NotRegistered):
        return Reason.POISON
    return Reason.FAILED


class DeadLetterer:
    """Publishes original messages to the dead-letter exchange, with confirms."""

    def __init__(self, app: celery.Celery, metrics: WorkerMetrics, timeout: float) -> None:
        self._app = app
        self._metrics = metrics
        self._timeout = timeout

    def publish(self, message: kombu.Message, queue: str, reason: Reason,
                error: Mapping[str, str] | None) -> bool:
        """Publish ``message`` to ``<queue>.XQ``; True once the broker confirmed it."""
        properties: dict[str, Any] = dict(message.properties or {})
        extra = {k: properties[k] for k in ("correlation_id", "message_id", "reply_to",
                                            "priority", "timestamp", "type", "app_id")
                 if properties.get(k) is not None}
        headers = dead_letter_headers(message.headers, reason=reason, queue=queue, error=error)
        if headers.get("compression") and not message.errors:
            # kombu already decompressed the body we publish: the header no longer holds.
            del headers["compression"]
        try:
            with self._app.producer_pool.acquire(block=True, timeout=self._timeout) as producer:
                producer.publish(
                    body_of(message),
                    exchange=DEAD_LETTER_EXCHANGE,
                    routing_key=dead_letter_queue_name(queue),
                    headers=headers,
                    # Raw bytes go out as they came (no serializer runs when a
                    # content type is given).
                    content_type=message.content_type or "application/octet-stream",
                    content_encoding=message.content_encoding or "binary",
                    delivery_mode=PERSISTENT,
                    mandatory=True,
                    retry=True,
                    retry_policy=_RETRY_POLICY,
                    timeout=self._timeout,
                    confirm_timeout=self._timeout,
                    **extra,
                )
        except Exception:
            log.error("could not dead-letter a message of %s (%s); it stays in the queue",
                      queue, reason, exc_info=True)
            return False
        self._metrics.dead_lettered(queue, reason.value)
        return True


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
            log.warning("a %s message without a task id: no %s event", queue, state)
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
        log.error("dead-lettered a message of %s as %s: %s", queue, reason, problem)
        self.emit(task_id, name, TaskState.DEAD_LETTERED, queue=queue, reason=reason,
                  error=error, hostname=hostname)


class CargoTask(Task):  # type: ignore[type-arg]  # generic in celery-types only
    """Base class of Cargo's tasks: Cargo's ``Request`` and the app's runtime."""

    Request = "workers.deadletter:CargoRequest"
    cargo_runtime: ClassVar[CargoRuntime | None] = None


def runtime_of(app_or_task: Any) -> CargoRuntime | None:
    """The runtime of a Celery app or task (None for tasks that are not Cargo's)."""
    holder = app_or_task.Task if isinstance(app_or_task, celery.Celery) else app_or_task
    runtime = getattr(holder, "cargo_runtime", None)
    return runtime if isinstance(runtime, CargoRuntime) else None


@functools.lru_cache(maxsize=1024)
def _process(pid: int) -> psutil.Process:
    # Building a psutil.Process reads /proc/<pid>/stat: once per pool process, not
    # once per task (it showed in the worker drain's profile). A pid reused by a new
    # child is still the process whose size we want.
    return psutil.Process(pid)


def rss_of(pid: int) -> int | None:
    try:
        return int(_process(pid).memory_info().rss)
    except (psutil.Error, OSError):
        return None


def _unwrap(exc: BaseException | None) -> BaseException:
    if isinstance(exc, einfo.ExceptionWithTraceback):  # type: ignore[attr-defined]
        inner: BaseException = exc.exc
        return inner
    return exc if exc is not None else RuntimeError("unknown failure")


class CargoRequest(Request):
    """Celery's Request, dead-lettering instead of acknowledging a failure away."""

    cargo_dead_lettered = False
    # Resident memory of the pool process when it accepted this task (the memory guard).
    cargo_baseline_rss: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Runs in the worker's main process for every task message it takes.
        self.cargo_received_at = time.monotonic()
        self.cargo_count("received")

    def cargo_count(self, kind: str, exception: str | None = None) -> None:
        """Count a task event on the worker's metrics (main process only)."""
        runtime = self.cargo_runtime
        if runtime is not None:
            runtime.metrics.task(kind, self.name, self.hostname or "unknown", self.cargo_queue,
                                 exception)

    def send_event(self, type: str, **fields: Any) -> None:
        # Celery reports every step of a task here, in the main process, whether
        # or not task events are enabled: celery-exporter's counters, without events.
        runtime = self.cargo_runtime
        if runtime is not None:
            runtime.metrics.task_event(type, self.name, self.hostname or "unknown",
                                       self.cargo_queue, fields)
        super().send_event(type, **fields)

    @property
    def cargo_runtime(self) -> CargoRuntime | None:
        return runtime_of(self.task)

    @property
    def cargo_queue(self) -> str:
        runtime = self.cargo_runtime
        info = self.delivery_info
        if runtime is not None:
            return runtime.queue_of(info)
        return routing_key_queue(info) or "unknown"

    def on_accepted(self, pid: Any, time_accepted: float) -> None:
        super().on_accepted(pid, time_accepted)
        runtime = self.cargo_runtime
        if runtime is not None:
            runtime.metrics.queue_wait.labels(
                self.name, self.hostname or "unknown", self.cargo_queue,
            ).observe(max(0.0, time_accepted - self.cargo_received_at))
        if isinstance(pid, int) and pid and pid != os.getpid():
            self.cargo_baseline_rss = rss_of(pid)

    def acknowledge(self) -> None:
        # A task whose events the main process publishes (workers.event_relay) is
        # acknowledged once they are confirmed, not before.
        runtime = self.cargo_runtime
        if (not self.acknowledged and runtime is not None and runtime.relay is not None
                and runtime.relay.defer_ack(self.id, self.cargo_ack_now)):
            return
        self.cargo_ack_now()

    def cargo_ack_now(self) -> None:
        """Send the ack: the task's outcome is confirmed (or it has none to wait for)."""
        super().acknowledge()

    def cargo_dead_letter(self, reason: Reason, error: dict[str, str] | None) -> bool:
        """Publish the message to the DLQ, then ack it. False (message kept) on failure."""
        if self.cargo_dead_lettered:
            return True
        runtime = self.cargo_runtime
        if runtime is None or self.acknowledged:
            return False
        if not runtime.deadletterer.publish(self.message, self.cargo_queue, reason, error):
            return False
        self.cargo_dead_lettered = True
        self.acknowledge()
        log.warning("dead-lettered %s[%s] as %s: %s", self.name, self.id, reason,
                    (error or {}).get("message", ""))
        return True

    def cargo_emit(self, state: TaskState, reason: Reason | None = None,
                   error: dict[str, str] | None = None) -> None:
        runtime = self.cargo_runtime
        if runtime is None:
            return
        retries = self.request_dict.get("retries") if isinstance(self.request_dict, dict) else None
        runtime.emit(self.id, self.name, state, queue=self.cargo_queue, reason=reason,
                     error=error, retries=retries if isinstance(retries, int) else None,
                     hostname=self.hostname)

    def on_failure(self, exc_info: einfo.ExceptionInfo, send_failed_event: bool = True,
                   return_ok: bool = False) -> None:
        if self.cargo_dead_lettered:
            # Already in the DLQ (the memory guard killed the child, or the hard
            # time limit was handled): only mark the request done.
            task_ready(self)
            return
        exc = _unwrap(exc_info.exception)
        reason = failure_reason(exc)
        if reason is None or self.cargo_runtime is None or self.acknowledged:
            super().on_failure(exc_info, send_failed_event, return_ok)
            return
        error = error_for(exc)
        if not self.cargo_dead_letter(reason, error):
            task_ready(self)
            self.reject(requeue=True)
            return
        if isinstance(exc, MemoryError):
            # Celery would re-raise a MemoryError in the main process.
            task_ready(self)
            self.cargo_emit(TaskState.FAILED, error=error)
        else:
            # Celery's own handling: the ack is now a no-op; a failure seen only
            # here (hard time limit, undecodable body) gets its task_failure
            # signal, i.e. its ``failed`` event, before ``dead_lettered``.
            super().on_failure(exc_info, send_failed_event, return_ok)
        self.cargo_emit(TaskState.DEAD_LETTERED, reason, error)

    def on_timeout(self, soft: bool, timeout: float) -> None:
        if soft or self.cargo_runtime is None:
            super().on_timeout(soft, timeout)
            return
        if self.cargo_dead_lettered:
            task_ready(self)
            log.error("hard time limit (%ss) exceeded for %s[%s]; dead-lettered", timeout,
                      self.name, self.id)
            return
        error = error_for(TimeLimitExceeded(timeout))
        if not self.cargo_dead_letter(Reason.TIME_LIMIT, error):
            task_ready(self)
            self.reject(requeue=True)
            return
        super().on_timeout(soft, timeout)
        self.cargo_emit(TaskState.DEAD_LETTERED, Reason.TIME_LIMIT, error)
