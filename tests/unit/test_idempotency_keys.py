"""The idempotency table's decisions (gateway/idempotency.py), without a broker."""

from __future__ import annotations

from broker.events import TaskEvent, TaskState, utc_now
from gateway.idempotency import IdempotencyKeys, Standing, Verdict, fingerprint, key_digest

KEY = key_digest("order-1")
REQUEST = fingerprint("calculate_distance", [3.0, 4.0], {}, {"priority": None})
OTHER = fingerprint("calculate_distance", [6.0, 8.0], {}, {"priority": None})


def test_a_new_key_publishes_and_a_duplicate_waits_until_it_is_confirmed() -> None:
    keys = IdempotencyKeys(10)
    assert keys.begin(KEY, REQUEST, "t-1", task_known=False) is Verdict.PUBLISH
    assert keys.begin(KEY, REQUEST, "t-1", task_known=False) is Verdict.IN_FLIGHT
    keys.settle(KEY, Standing.ACCEPTED)
    assert keys.begin(KEY, REQUEST, "t-1", task_known=False) is Verdict.REPLAY
    assert keys.begin(KEY, OTHER, "t-1", task_known=False) is Verdict.MISMATCH


def test_a_publish_that_was_not_accepted_frees_the_key_for_a_retry() -> None:
    keys = IdempotencyKeys(10)
    keys.begin(KEY, REQUEST, "t-1", task_known=False)
    keys.settle(KEY, None)
    assert keys.begin(KEY, REQUEST, "t-1", task_known=False) is Verdict.PUBLISH


def test_an_unknown_outcome_is_replayed_once_the_stream_shows_the_task() -> None:
    keys = IdempotencyKeys(10)
    keys.begin(KEY, REQUEST, "t-1", task_known=False)
    keys.settle(KEY, Standing.UNKNOWN)
    assert keys.begin(KEY, REQUEST, "t-1", task_known=True) is Verdict.REPLAY


def test_a_key_announced_by_another_replica_is_known_with_its_request() -> None:
    keys = IdempotencyKeys(10)
    keys.learn(TaskEvent("t-1", "calculate_distance", TaskState.QUEUED, utc_now(),
                         idempotency_key=KEY, fingerprint=REQUEST))
    assert keys.begin(KEY, REQUEST, "t-1", task_known=False) is Verdict.REPLAY
    assert keys.begin(KEY, OTHER, "t-1", task_known=False) is Verdict.MISMATCH


def test_the_table_forgets_the_least_recently_used_key_first() -> None:
    keys = IdempotencyKeys(2)
    for n in range(3):
        keys.begin(key_digest(f"k-{n}"), REQUEST, f"t-{n}", task_known=False)
    assert len(keys) == 2
    assert keys.standing(key_digest("k-0")) is None
