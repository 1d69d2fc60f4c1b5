"""Which retry signals become ``failed``/``retrying`` events (no broker needed)."""

from __future__ import annotations

import pytest
from celery.app.task import Context
from celery.exceptions import Retry

from broker.events import TaskEvent, TaskState
from broker.settings import load_settings
from workers.app import create_app
from workers.lifecycle import LifecycleEvents


def recorded_messages(reason: object, monkeypatch: pytest.MonkeyPatch) -> list[list[TaskState]]:
    """The stream messages (each a list of event states) a retry signal publishes."""
    published: list[list[TaskState]] = []

    def record(self: LifecycleEvents, events: list[TaskEvent], wait: bool) -> bool:
        published.append([e.state for e in events])
        return True

    monkeypatch.setattr(LifecycleEvents, "_publish_batch", record)
    app = create_app(load_settings({}))
    app.finalize()
    events = LifecycleEvents(app, publish_timeout=1.0, merge_window=60.0)
    request = Context(id="t1", retries=0, hostname="w@h", delivery_info={"routing_key": "cargo"})
    events._on_retry(sender=app.tasks["calculate_distance"], request=request, reason=reason)
    return published


def test_celerys_cancel_after_a_lost_connection_emits_no_retrying_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Celery's Request.cancel (worker_cancel_long_running_tasks_on_connection_loss)
    # sends task_retry without a reason, even for a task whose child had already
    # reported success: a 'retrying' then followed 'succeeded'.
    assert recorded_messages(None, monkeypatch) == []


def test_a_task_retrying_after_an_error_emits_failed_then_retrying_in_one_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert recorded_messages(Retry(exc=ValueError("boom")), monkeypatch) == [
        [TaskState.FAILED, TaskState.RETRYING]]
