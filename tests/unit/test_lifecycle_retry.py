"""Which retry signals become ``failed``/``retrying`` events (no broker needed)."""

from __future__ import annotations

from celery.app.task import Context
from celery.exceptions import Retry

from broker.events import TaskEvent, TaskState
from broker.settings import load_settings
from workers.app import create_app
from workers.lifecycle import LifecycleEvents


def recorded_states(reason: object) -> list[TaskState]:
    app = create_app(load_settings({}))
    app.finalize()
    events = LifecycleEvents(app, publish_timeout=1.0)
    published: list[TaskEvent] = []

    def record(event: TaskEvent) -> bool:
        published.append(event)
        return True

    events.publish = record  # type: ignore[method-assign]
    request = Context(id="t1", retries=0, hostname="w@h", delivery_info={"routing_key": "cargo"})
    events._on_retry(sender=app.tasks["calculate_distance"], request=request, reason=reason)
    return [e.state for e in published]


def test_celerys_cancel_after_a_lost_connection_emits_no_retrying_event() -> None:
    # Celery's Request.cancel (worker_cancel_long_running_tasks_on_connection_loss)
    # sends task_retry without a reason, even for a task whose child had already
    # reported success: a 'retrying' then followed 'succeeded'.
    assert recorded_states(None) == []


def test_a_task_retrying_after_an_error_still_emits_failed_then_retrying() -> None:
    assert recorded_states(Retry(exc=ValueError("boom"))) == [
        TaskState.FAILED, TaskState.RETRYING]
