"""Pure logic of the gateway's task store, event ring and subscription hub."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from broker.events import TaskEvent, TaskState
from gateway.hub import Hub, Subscriber, event_frame
from gateway.store import EventRing, StaleEventFilter, TaskRecord, TaskStore
from gateway.tasks_api import accepted_body

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(state: TaskState, cursor: int | None, task_id: str = "t1", seconds: float = 0,
          name: str = "calculate_distance", **fields: object) -> TaskEvent:
    return TaskEvent(task_id, name, state, T0 + timedelta(seconds=seconds), cursor=cursor,
                     **fields)  # type: ignore[arg-type]


def fold(store: TaskStore, e: TaskEvent) -> TaskRecord:
    """Apply ``e`` and return its task's record."""
    store.apply(e)
    record = store.get(e.task_id)
    assert record is not None
    return record


def test_a_task_moves_from_queued_through_started_to_succeeded() -> None:
    store = TaskStore(10)
    store.apply(event(TaskState.QUEUED, 1))
    store.apply(event(TaskState.STARTED, 2, seconds=1, retries=0))
    record = fold(store, event(TaskState.SUCCEEDED, 3, seconds=2, result=5.0))
    doc = record.to_json()
    assert doc["state"] == "succeeded"
    assert doc["result"] == 5.0
    assert doc["submitted_at"] == "2026-01-01T00:00:00.000Z"
    assert doc["started_at"] == "2026-01-01T00:00:01.000Z"
    assert doc["finished_at"] == "2026-01-01T00:00:02.000Z"
    assert record.last_event is not None
    assert record.last_event.cursor == 3


def test_a_queued_event_arriving_after_the_worker_started_does_not_move_the_task_back() -> None:
    store = TaskStore(10)
    store.apply(event(TaskState.STARTED, 1, seconds=1))
    assert store.apply(event(TaskState.QUEUED, 2, seconds=0.5)) is False  # stale
    record = store.get("t1")
    assert record is not None
    assert record.state is TaskState.STARTED


def test_a_replayed_task_starts_over_after_its_terminal_state() -> None:
    store = TaskStore(10)
    store.apply(event(TaskState.STARTED, 1, seconds=1))
    store.apply(event(TaskState.DEAD_LETTERED, 2, seconds=2, reason="failed",
                      error={"type": "ValueError", "message": "boom"}))
    record = fold(store, event(TaskState.QUEUED, 3, seconds=10))
    assert record.state is TaskState.QUEUED
    assert record.reason is None
    assert record.error is None
    assert record.finished_at is None
    record = fold(store, event(TaskState.SUCCEEDED, 4, seconds=11, result=1))
    assert record.state is TaskState.SUCCEEDED
    assert record.result == 1


def test_a_task_that_returns_null_still_reports_its_result() -> None:
    store = TaskStore(10)
    record = fold(store, event(TaskState.SUCCEEDED, 1, result=None))
    assert "result" in record.to_json()
    assert record.to_json()["result"] is None


def test_the_store_forgets_the_least_recently_updated_task_first() -> None:
    store = TaskStore(2)
    store.apply(event(TaskState.QUEUED, 1, task_id="a"))
    store.apply(event(TaskState.QUEUED, 2, task_id="b"))
    store.apply(event(TaskState.STARTED, 3, task_id="a"))
    store.apply(event(TaskState.QUEUED, 4, task_id="c"))
    assert store.get("b") is None
    assert store.get("a") is not None
    assert store.get("c") is not None


def test_the_ring_knows_which_cursors_it_can_replay() -> None:
    ring = EventRing(3)
    assert not ring.covers(0)
    for cursor in (10, 11, 13):
        ring.append(event(TaskState.QUEUED, cursor, task_id=str(cursor)))
    assert ring.covers(9)
    assert ring.covers(12)
    assert not ring.covers(8)
    ring.append(event(TaskState.QUEUED, 14, task_id="14"))  # evicts 10
    assert not ring.covers(9)
    assert ring.covers(10)
    assert [e.cursor for e in ring.after(11)] == [13, 14]


def _frames(hub: Hub, subscriber: Subscriber) -> list[dict[str, object]]:
    """The queued WebSocket frames' JSON (after a 2-, 4- or 10-byte header)."""
    frames = [json.loads(frame[{126: 4, 127: 10}.get(frame[1], 2):])
              for frame in subscriber.frames]
    subscriber.frames.clear()
    return frames


def _feed(hub: Hub, e: TaskEvent) -> None:
    hub.receive(e)


def test_subscribing_to_a_task_sends_its_latest_event_then_only_later_ones() -> None:
    hub = Hub(TaskStore(10), EventRing(10))
    _feed(hub, event(TaskState.QUEUED, 1))
    _feed(hub, event(TaskState.STARTED, 2))
    sub = hub.connect(100)
    hub.subscribe_tasks(sub, ["t1"])
    _feed(hub, event(TaskState.SUCCEEDED, 3, result=5.0))
    assert [f["cursor"] for f in _frames(hub, sub)] == ["2", "3"]


def test_subscribing_to_all_since_a_cursor_replays_from_memory_without_duplicates() -> None:
    hub = Hub(TaskStore(10), EventRing(10))
    for cursor in (1, 2, 3):
        _feed(hub, event(TaskState.QUEUED, cursor, task_id=f"t{cursor}"))
    sub = hub.connect(100)
    assert hub.subscribe_all(sub, None, since=1) is None
    _feed(hub, event(TaskState.QUEUED, 4, task_id="t4"))
    assert [f["cursor"] for f in _frames(hub, sub)] == ["2", "3", "4"]


def test_a_since_older_than_memory_asks_for_a_stream_replay_and_holds_live_events() -> None:
    hub = Hub(TaskStore(10), EventRing(2))
    for cursor in (1, 2, 3, 4):
        _feed(hub, event(TaskState.QUEUED, cursor, task_id=f"t{cursor}"))
    sub = hub.connect(100)
    assert hub.subscribe_all(sub, None, since=0) == 4
    _feed(hub, event(TaskState.QUEUED, 5, task_id="t5"))
    assert _frames(hub, sub) == []  # held until the replay is done
    for cursor in (1, 2, 3, 4):  # what the stream replay delivers
        sub.offer(event_frame(event(TaskState.QUEUED, cursor, task_id=f"t{cursor}")))
    hub.finish_backfill(sub)
    assert [f["cursor"] for f in _frames(hub, sub)] == ["1", "2", "3", "4", "5"]


def test_a_subscriber_that_falls_too_far_behind_is_marked_to_be_closed() -> None:
    hub = Hub(TaskStore(10), EventRing(10))
    sub = hub.connect(2)
    hub.subscribe_all(sub, None, None)
    for cursor in (1, 2, 3):
        _feed(hub, event(TaskState.QUEUED, cursor, task_id=f"t{cursor}"))
    assert sub.overflowed


def test_a_name_filter_limits_all_subscriptions_and_disconnect_unregisters() -> None:
    hub = Hub(TaskStore(10), EventRing(10))
    sub = hub.connect(10)
    hub.subscribe_all(sub, frozenset({"sleep"}), None)
    _feed(hub, event(TaskState.QUEUED, 1, task_id="a", name="calculate_distance"))
    _feed(hub, event(TaskState.QUEUED, 2, task_id="b", name="sleep"))
    assert [f["task_id"] for f in _frames(hub, sub)] == ["b"]
    hub.subscribe_tasks(sub, ["a"])
    hub.disconnect(sub)
    assert hub.connections == 0
    assert hub.subscriptions == 0


def test_a_queued_event_stamped_before_a_fast_task_finished_does_not_reopen_it() -> None:
    # The gateway stamps queued before publishing; the worker may finish first.
    store = TaskStore(10)
    store.apply(event(TaskState.STARTED, 1, seconds=0.001))
    store.apply(event(TaskState.SUCCEEDED, 2, seconds=0.002, result=5.0))
    record = fold(store, event(TaskState.QUEUED, 3, seconds=0.0))
    assert record.state is TaskState.SUCCEEDED
    assert record.result == 5.0


def test_a_late_queued_event_does_not_become_what_new_subscribers_are_sent() -> None:
    store = TaskStore(10)
    store.apply(event(TaskState.SUCCEEDED, 2, seconds=0.002, result=5.0))
    record = fold(store, event(TaskState.QUEUED, 3, seconds=0.0))
    assert record.last_event is not None
    assert record.last_event.state is TaskState.SUCCEEDED


def test_the_accepted_document_is_the_contracts_json_even_for_names_that_need_escaping() -> None:
    task_id = "0b6f5a3c-9d2e-4f11-8a7b-3c2d1e0f9a8b"
    for name in ("calculate_distance", 'odd "name"\\ünï'):
        assert json.loads(accepted_body(task_id, name)) == {
            "task_id": task_id, "name": name, "state": "queued",
            "status_url": f"/tasks/{task_id}", "stream_url": f"/ws?task_id={task_id}"}


def test_a_replay_whose_queued_event_arrives_after_the_new_run_finished_stays_finished() -> None:
    store = TaskStore(10)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    run = [(TaskState.QUEUED, 0), (TaskState.STARTED, 1), (TaskState.FAILED, 2),
           (TaskState.DEAD_LETTERED, 3),
           # the replay: the worker's events reach the stream before the gateway's queued
           (TaskState.STARTED, 6), (TaskState.SUCCEEDED, 7), (TaskState.QUEUED, 5)]
    for state, seconds in run:
        store.apply(TaskEvent("t", "fail_once", state, t0 + timedelta(seconds=seconds)))
    record = store.get("t")
    assert record is not None
    assert record.state is TaskState.SUCCEEDED


def test_a_queued_announcement_reaching_the_stream_after_the_task_finished_is_sent_to_no_one(
) -> None:
    hub = Hub(TaskStore(10), EventRing(10))
    watcher, everything = hub.connect(10), hub.connect(10)
    hub.subscribe_tasks(watcher, ["t1"])
    hub.subscribe_all(everything, None, None)
    seen: list[TaskState] = []
    hub.listeners.append(lambda e: seen.append(e.state))
    _feed(hub, event(TaskState.STARTED, 1, seconds=0.001))
    _feed(hub, event(TaskState.SUCCEEDED, 2, seconds=0.002, result=5.0))
    _feed(hub, event(TaskState.QUEUED, 3, seconds=0.0))  # the gateway's, late
    for sub in (watcher, everything):
        assert [f["state"] for f in _frames(hub, sub)] == ["started", "succeeded"]
    assert seen == [TaskState.STARTED, TaskState.SUCCEEDED]
    assert hub.high_water == 3  # read, though not delivered
    late = hub.connect(10)  # a replay from memory skips it too
    assert hub.subscribe_all(late, None, since=0) is None
    assert [f["state"] for f in _frames(hub, late)] == ["started", "succeeded"]


def test_a_stream_replay_drops_late_queued_announcements_and_keeps_a_replayed_tasks() -> None:
    stale = StaleEventFilter()
    # (only a dead-lettered task is replayed: a succeeded one never runs again)
    stream = [event(TaskState.STARTED, 1, seconds=1),
              event(TaskState.DEAD_LETTERED, 2, seconds=2, reason="failed"),
              event(TaskState.QUEUED, 3, seconds=0.5),  # late: the task had started
              event(TaskState.QUEUED, 4, task_id="t2", seconds=3),
              event(TaskState.QUEUED, 5, seconds=10),  # t1 replayed from the dead letters
              event(TaskState.STARTED, 6, seconds=11)]
    assert [stale.admits(e) for e in stream] == [True, True, False, True, True, True]


def test_the_stale_event_filter_remembers_a_bounded_number_of_tasks() -> None:
    stale = StaleEventFilter(max_tasks=2)
    for i, task_id in enumerate(("a", "b", "c")):
        assert stale.admits(event(TaskState.STARTED, i, task_id=task_id, seconds=5))
    assert stale.admits(event(TaskState.QUEUED, 9, task_id="a", seconds=1))  # forgotten
    assert not stale.admits(event(TaskState.QUEUED, 10, task_id="c", seconds=1))


def test_a_late_retrying_after_succeeded_does_not_move_the_task_out_of_its_terminal_state(
) -> None:
    # a worker that lost its broker connection between the outcome and the ack
    # (Celery cancels the unacknowledged request and signals a retry)
    store = TaskStore(10)
    store.apply(event(TaskState.STARTED, 1, seconds=1))
    store.apply(event(TaskState.SUCCEEDED, 2, seconds=2, result=5.0))
    for late in (event(TaskState.RETRYING, 3, seconds=3, retries=1),
                 event(TaskState.STARTED, 4, seconds=4),  # a re-run elsewhere
                 event(TaskState.PROGRESS, 5, seconds=5, progress={"done": 1}),
                 event(TaskState.FAILED, 6, seconds=6, error={"type": "E", "message": "m"}),
                 event(TaskState.SUCCEEDED, 7, seconds=7, result=6.0),
                 event(TaskState.QUEUED, 8, seconds=8)):
        assert store.apply(late) is False, late.state
    record = store.get("t1")
    assert record is not None
    assert (record.state, record.result, record.finished_at) == (
        TaskState.SUCCEEDED, 5.0, T0 + timedelta(seconds=2))
    assert record.last_event is not None
    assert record.last_event.cursor == 2


def test_a_late_attempt_event_after_dead_lettered_or_revoked_is_ignored_but_a_replay_runs(
) -> None:
    for terminal in (TaskState.DEAD_LETTERED, TaskState.REVOKED):
        store = TaskStore(10)
        store.apply(event(TaskState.STARTED, 1, seconds=1))
        store.apply(event(terminal, 2, seconds=2, reason="failed"))
        for late in (TaskState.RETRYING, TaskState.PROGRESS, TaskState.FAILED):
            assert store.apply(event(late, 3, seconds=3)) is False, (terminal, late)
        assert fold(store, event(TaskState.STARTED, 4, seconds=10)).state is TaskState.STARTED


def test_subscribers_get_one_succeeded_and_no_late_retrying_after_it() -> None:
    hub = Hub(TaskStore(10), EventRing(10))
    watcher = hub.connect(10)
    hub.subscribe_tasks(watcher, ["t1"])
    _feed(hub, event(TaskState.STARTED, 1, seconds=1))
    _feed(hub, event(TaskState.SUCCEEDED, 2, seconds=2, result=5.0))
    _feed(hub, event(TaskState.RETRYING, 3, seconds=3, retries=1))
    _feed(hub, event(TaskState.SUCCEEDED, 4, seconds=4, result=5.0))
    assert [f["state"] for f in _frames(hub, watcher)] == ["started", "succeeded"]


def test_a_stream_replay_drops_what_follows_a_succeeded_event_of_the_same_task() -> None:
    stale = StaleEventFilter()
    stream = [event(TaskState.STARTED, 1, seconds=1), event(TaskState.SUCCEEDED, 2, seconds=2),
              event(TaskState.RETRYING, 3, seconds=3),  # the worker that could not ack
              event(TaskState.STARTED, 4, task_id="t2", seconds=3),
              event(TaskState.DEAD_LETTERED, 5, task_id="t2", seconds=4),
              event(TaskState.PROGRESS, 6, task_id="t2", seconds=5),  # late, of that attempt
              event(TaskState.QUEUED, 7, task_id="t2", seconds=10)]  # replayed
    assert [stale.admits(e) for e in stream] == [True, True, False, True, True, False, True]


def test_an_event_frame_is_built_once_and_shared_by_every_subscriber() -> None:
    hub = Hub(TaskStore(10), EventRing(10))
    first, second = hub.connect(10), hub.connect(10)
    hub.subscribe_all(first, None, None)
    hub.subscribe_tasks(second, ["t1"])
    _feed(hub, event(TaskState.SUCCEEDED, 7, result=5.0))
    assert len(first.frames) == len(second.frames) == 1
    assert first.frames[0] is second.frames[0]
