"""How a worker process holds events that need no confirm (``workers.event_window``)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from broker.events import MAX_BATCH, TaskEvent, TaskState
from workers.event_window import EventWindow


def _event(state: TaskState, task_id: str = "t1") -> TaskEvent:
    return TaskEvent(task_id=task_id, name="calculate_distance", state=state,
                     ts=datetime(2026, 12, 1, tzinfo=UTC))


class Recorder:
    """Stands in for the publisher: records each message's events and its wait flag."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[TaskState], bool]] = []
        self.arrived = threading.Event()

    def __call__(self, events: list[TaskEvent], wait: bool) -> bool:
        self.messages.append(([e.state for e in events], wait))
        self.arrived.set()
        return True


def test_a_task_that_ends_within_the_window_costs_one_confirmed_message_in_event_order() -> None:
    sent = Recorder()
    window = EventWindow(60.0, sent)
    window.hold(_event(TaskState.STARTED))
    window.hold(_event(TaskState.PROGRESS))
    window.send(_event(TaskState.SUCCEEDED), wait=True)
    assert sent.messages == [
        ([TaskState.STARTED, TaskState.PROGRESS, TaskState.SUCCEEDED], True)]


def test_held_events_leave_unconfirmed_once_the_window_passed_without_an_outcome() -> None:
    sent = Recorder()
    window = EventWindow(0.05, sent)
    window.hold(_event(TaskState.STARTED))
    assert sent.arrived.wait(30), "the flusher never published the held event"
    assert sent.messages == [([TaskState.STARTED], False)]
    window.send(_event(TaskState.SUCCEEDED), wait=True)
    assert sent.messages[-1] == ([TaskState.SUCCEEDED], True)


def test_a_window_of_zero_publishes_every_event_at_once() -> None:
    sent = Recorder()
    window = EventWindow(0, sent)
    window.hold(_event(TaskState.STARTED))
    window.send(_event(TaskState.SUCCEEDED), wait=True)
    assert sent.messages == [([TaskState.STARTED], False), ([TaskState.SUCCEEDED], True)]


def test_a_full_batch_of_held_events_leaves_without_waiting_for_the_window() -> None:
    sent = Recorder()
    window = EventWindow(60.0, sent)
    for _ in range(MAX_BATCH):
        window.hold(_event(TaskState.PROGRESS))
    assert sent.messages == [([TaskState.PROGRESS] * MAX_BATCH, False)]


def test_a_failed_publish_is_reported_to_the_caller() -> None:
    window = EventWindow(60.0, lambda events, wait: False)
    window.hold(_event(TaskState.STARTED))
    assert window.send(_event(TaskState.SUCCEEDED), wait=True) is False


def test_flushing_publishes_what_a_task_that_ended_without_an_outcome_held_and_waits() -> None:
    sent = Recorder()
    window = EventWindow(60.0, sent)
    window.hold(_event(TaskState.STARTED))
    window.flush()
    assert sent.messages == [([TaskState.STARTED], True)]
    window.flush()  # nothing held: nothing published
    assert sent.messages == [([TaskState.STARTED], True)]
