"""Lifecycle events: Celery's task signals become Cargo task events on the events stream.

The workers have no result backend; the events stream is how results, errors
and progress reach the gateways. Each event is published from the process that
observed it (the prefork child running the task, or the main process for a
hard time limit) on a confirm channel of that process (``workers.event_publisher``),
so a task's outcome is in the stream before its message is acknowledged.

Publishing an event must never change a task's outcome: a failed publish is
logged and dropped, never raised into the task.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import celery
import structlog
from celery import signals
from celery.app.task import Context, Task

from broker.events import CONTENT_TYPE, TaskEvent, TaskState, encode_batch, error_of, utc_now
from broker.topology import EVENTS_EXCHANGE, event_routing_key
from workers.event_publisher import ConfirmFailed, EventPublisher, PendingEvent
from workers.event_relay import EventRelay
from workers.event_window import EventWindow

log = structlog.get_logger(__name__)

# Events a process does not wait for: held for the merge window (workers.event_window),
# then they travel with the task's next event, which is confirmed.
_HELD = frozenset({TaskState.STARTED, TaskState.PROGRESS})
# A countdown travels through Celery's native delayed delivery, which prefixes
# the routing key with 28 binary digits ("0.1.0....<queue>").
_DELAY_PREFIX = re.compile(r"^(?:[01]\.){28}")


def routing_key_queue(delivery_info: Any) -> str | None:
    """The queue a message came from, by its routing key (Cargo binds each queue by
    its own name; a countdown's routing key carries the delay prefix)."""
    routing_key = delivery_info.get("routing_key") if isinstance(delivery_info, Mapping) else None
    if isinstance(routing_key, str) and routing_key:
        return _DELAY_PREFIX.sub("", routing_key, count=1)
    return None


def queue_of(request: Context, default: str | None) -> str | None:
    """The queue a task came from."""
    return routing_key_queue(request.delivery_info) or default


class LifecycleEvents:
    """Publishes the task events of one Celery app."""

    def __init__(self, app: celery.Celery, publish_timeout: float, merge_window: float,
                 relay: EventRelay | None = None) -> None:
        self._app = app
        self._relay = relay
        # Connects on first use, in the process that publishes (after the fork).
        self._publisher = EventPublisher(app.conf.broker_url, publish_timeout)
        self._window = EventWindow(merge_window, self._publish_batch)

    def connect(self) -> None:
        """Connect to Celery's signals; connecting the same app twice is a no-op.

        Signals are process-wide, so each handler ignores tasks of other apps
        (tests build several apps in one process).
        """
        uid = f"cargo.lifecycle.{id(self._app)}"
        signals.task_prerun.connect(self._on_prerun, weak=False, dispatch_uid=f"{uid}.prerun")
        signals.task_retry.connect(self._on_retry, weak=False, dispatch_uid=f"{uid}.retry")
        signals.task_failure.connect(self._on_failure, weak=False, dispatch_uid=f"{uid}.failure")
        signals.task_success.connect(self._on_success, weak=False, dispatch_uid=f"{uid}.success")
        signals.task_revoked.connect(self._on_revoked, weak=False, dispatch_uid=f"{uid}.revoked")
        signals.task_postrun.connect(self._on_postrun, weak=False, dispatch_uid=f"{uid}.postrun")

    def progress(self, task: Task[Any, Any], progress: dict[str, Any]) -> None:
        """Publish a ``progress`` event for the task currently running."""
        self._emit(task, task.request, TaskState.PROGRESS, progress=progress)

    def _ours(self, sender: Any) -> bool:
        return isinstance(sender, Task) and sender.app is self._app

    def _on_prerun(self, sender: Any = None, task_id: str | None = None, **_: Any) -> None:
        if self._ours(sender):
            self._emit(sender, sender.request, TaskState.STARTED, task_id=task_id)

    def _on_postrun(self, sender: Any = None, **_: Any) -> None:
        # A task that ended with no outcome event here (Reject, Ignore) still holds its
        # ``started``: out now, confirmed, before the main process reports the end
        # (e.g. RabbitMQ's dead-lettering of a rejected message). Otherwise a no-op.
        if self._ours(sender):
            self._window.flush()

    def _on_retry(self, sender: Any = None, request: Context | None = None,
                  reason: Any = None, **_: Any) -> None:
        if not self._ours(sender) or request is None:
            return
        if reason is None:
            # Celery's own cancel of an unacknowledged request after its broker
            # connection was lost (worker_cancel_long_running_tasks_on_connection_loss)
            # signals a retry without a reason. Nothing failed: the broker
            # redelivers the message, and its task may even have succeeded already
            # (the child's ``succeeded`` was confirmed, the main process could not
            # ack), so a ``retrying`` here would follow ``succeeded``. The next
            # delivery says ``started`` if it runs again.
            log.info("task.cancelled_on_connection_loss", task_name=sender.name,
                     task_id=request.id)
            return
        # The contract's path for a failed attempt that will run again is
        # failed -> retrying; Celery signals only the retry, so say both.
        cause = getattr(reason, "exc", None)
        if isinstance(cause, BaseException):  # held: it travels with the retrying
            self._emit(sender, request, TaskState.FAILED, error=error_of(cause), hold=True)
        error = error_of(cause if isinstance(cause, BaseException) else reason)
        # retries counts the attempt about to be scheduled.
        self._emit(sender, request, TaskState.RETRYING, error=error,
                   retries=(request.retries or 0) + 1)

    def _on_failure(self, sender: Any = None, task_id: str | None = None,
                    exception: BaseException | None = None, **_: Any) -> None:
        if self._ours(sender):
            error = error_of(exception) if exception is not None else None
            self._emit(sender, sender.request, TaskState.FAILED, task_id=task_id, error=error)

    def _on_success(self, sender: Any = None, result: Any = None, **_: Any) -> None:
        if self._ours(sender):
            self._emit(sender, sender.request, TaskState.SUCCEEDED, result=result)

    def _on_revoked(self, sender: Any = None, request: Any = None, expired: bool = False,
                    **_: Any) -> None:
        # A task past its ``expires`` (a bridged Dramatiq message's max_age) is
        # discarded by Celery unrun: its terminal state is ``revoked``.
        if self._ours(sender) and request is not None:
            self._emit(sender, request, TaskState.REVOKED,
                       reason="expired" if expired else None)

    def _emit(self, task: Task[Any, Any], request: Context, state: TaskState, *,
              task_id: str | None = None, retries: int | None = None, hold: bool = False,
              **fields: Any) -> None:
        event_id = task_id or request.id
        if event_id is None:
            log.warning("events.no_task_id", state=state.value, task_name=task.name)
            return
        event = TaskEvent(
            task_id=event_id, name=task.name, state=state, ts=utc_now(),
            retries=request.retries if retries is None else retries,
            queue=queue_of(request, self._app.conf.task_default_queue),
            hostname=request.hostname, **fields,
        )
        if hold or state in _HELD:
            self._window.hold(event)
        else:
            self.publish(event)

    def publish(self, event: TaskEvent) -> bool:
        """Publish ``event`` with whatever this process holds, and wait for the
        broker's confirm; False (logged) on failure."""
        return self._window.send(event, wait=True)

    def _publish_batch(self, events: list[TaskEvent], wait: bool) -> bool:
        """One stream message; its routing key is its last event's (the outcome)."""
        last = events[-1]
        if wait and self._relay is not None and _whole_success(events) and \
                self._relay.hand_over(last.task_id, [e.to_json() for e in events]):
            return True  # the main process publishes it (workers.event_relay)
        body = last.to_json() if len(events) == 1 else encode_batch(events)
        pending = PendingEvent(body, EVENTS_EXCHANGE, event_routing_key(last.state, last.name),
                               CONTENT_TYPE)
        try:
            self._publisher.publish(pending, wait=wait)
        except ConfirmFailed as exc:
            log.warning("events.publish_failed", state=last.state.value, task_name=last.name,
                        task_id=last.task_id, events=len(events), error=str(exc))
            return False
        return True


def _whole_success(events: list[TaskEvent]) -> bool:
    """A task's every event from ``started`` to ``succeeded``, none published before."""
    first, last = events[0], events[-1]
    return (first.state is TaskState.STARTED and last.state is TaskState.SUCCEEDED
            and all(e.task_id == last.task_id for e in events))
