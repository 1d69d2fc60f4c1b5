"""Cargo's Celery ``Request``: dead-letters a task that failed for good instead of acking it away.

Celery makes one per task message, in the worker's main process. It dead-letters
(through :class:`workers.deadletterer.DeadLetterer`) a task that failed for good,
ran past its hard time limit, or could not be decoded in the pool, and only then
acknowledges the message; when that publish fails it requeues the message. Once a
request is dead-lettered, whatever Celery reports about it later (the killed
child's ``WorkerLostError``, the hard time limit's second callback) only marks it
done: it is never acknowledged twice (a double ack closes the channel) nor
requeued. It also counts each task's steps on the worker's metrics and records
the pool process's memory at acceptance for the memory guard (``workers.guard``).
"""

from __future__ import annotations

import os
import time
from typing import Any

import structlog
from billiard import einfo
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
from kombu.exceptions import ContentDisallowed, DecodeError

from broker.deadletter import Reason
from broker.events import TaskState, error_of
from workers.celery_state_adapter import forget_request
from workers.lifecycle import routing_key_queue
from workers.rss import rss_of
from workers.runtime import CargoRuntime, runtime_of

log = structlog.get_logger(__name__)


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
        log.warning("deadletter.task", task_name=self.name, task_id=self.id, reason=str(reason),
                    message=(error or {}).get("message", ""))
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
            forget_request(self)
            return
        exc = _unwrap(exc_info.exception)
        reason = failure_reason(exc)
        if reason is None or self.cargo_runtime is None or self.acknowledged:
            super().on_failure(exc_info, send_failed_event, return_ok)
            return
        error = error_for(exc)
        if not self.cargo_dead_letter(reason, error):
            forget_request(self)
            self.reject(requeue=True)
            return
        if isinstance(exc, MemoryError):
            # Celery would re-raise a MemoryError in the main process.
            forget_request(self)
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
            forget_request(self)
            log.error("deadletter.time_limit_exceeded", timeout=timeout, task_name=self.name,
                      task_id=self.id)
            return
        error = error_for(TimeLimitExceeded(timeout))
        if not self.cargo_dead_letter(Reason.TIME_LIMIT, error):
            forget_request(self)
            self.reject(requeue=True)
            return
        super().on_timeout(soft, timeout)
        self.cargo_emit(TaskState.DEAD_LETTERED, Reason.TIME_LIMIT, error)
