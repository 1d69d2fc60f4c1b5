"""Dead-letter helpers and retry policy: reasons, headers, parsing, backoff, cursors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from broker.celery_protocol import encode_task
from broker.deadletter import (
    Reason,
    dead_letter_headers,
    dead_lettered_by_cargo,
    identify,
    parse_dead_letter,
    poison_problem,
    reason_of,
    replay_headers,
)
from broker.settings import load_settings
from gateway.deadletters import Cursor
from workers.policy import PermanentError, backoff_delay, resolve_policy

WHEN = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def message(task_id: str = "t-1", name: str = "calculate_distance") -> tuple[bytes, dict]:  # type: ignore[type-arg]
    msg = encode_task(task_id, name, [3, 4], {})
    return msg.body, dict(msg.headers)


def test_cargos_own_reason_header_wins_and_names_a_contract_reason() -> None:
    assert reason_of({"x-cargo-reason": "memory_limit"}) == "memory_limit"
    assert reason_of({"x-cargo-reason": b"poison"}) == "poison"


@pytest.mark.parametrize(("rabbitmq_reason", "reason"), [
    ("delivery_limit", "delivery_limit"), ("rejected", "rejected"), ("expired", "expired")])
def test_rabbitmqs_x_death_reason_maps_to_cargos_vocabulary(rabbitmq_reason: str,
                                                            reason: str) -> None:
    headers = {"x-death": [{"reason": rabbitmq_reason, "queue": "cargo", "count": 1}],
               "x-first-death-reason": rabbitmq_reason}
    assert reason_of(headers) == reason
    assert reason_of({"x-first-death-reason": rabbitmq_reason}) == reason


def test_a_message_never_dead_lettered_has_no_reason() -> None:
    assert reason_of({}) is None
    assert reason_of(None) is None
    assert not dead_lettered_by_cargo({"x-death": [{"reason": "rejected"}]})


def test_dead_letter_headers_keep_the_original_and_add_reason_error_queue_and_time() -> None:
    _, headers = message()
    result = dead_letter_headers(headers, reason=Reason.FAILED, queue="cargo",
                                 error={"type": "ValueError", "message": "x" * 5000}, now=WHEN)
    assert {k: result[k] for k in headers} == headers
    assert result["x-cargo-reason"] == "failed"
    assert result["x-cargo-queue"] == "cargo"
    assert result["x-cargo-dead-lettered-at"] == "2026-11-25T09:00:00.000Z"
    assert result["x-cargo-error-type"] == "ValueError"
    assert len(result["x-cargo-error-message"]) == 2000
    assert dead_lettered_by_cargo(result)


def test_replay_headers_drop_every_dead_letter_header_and_start_the_task_afresh() -> None:
    _, headers = message()
    dead = dead_letter_headers({**headers, "retries": 3, "eta": "2026-01-01T00:00:00+00:00"},
                               reason=Reason.FAILED, queue="cargo", now=WHEN)
    dead.update({"x-death": [{"reason": "rejected"}], "x-first-death-reason": "rejected",
                 "x-delivery-count": 2})
    replay = replay_headers(dead)
    assert not [k for k in replay if k.startswith(("x-cargo-", "x-death", "x-first-death"))]
    assert "x-delivery-count" not in replay
    assert replay["retries"] == 0
    assert replay["eta"] is None
    assert replay["id"] == headers["id"]
    assert replay["task"] == headers["task"]


def test_a_dead_letter_parses_into_the_api_item() -> None:
    body, headers = message("t-9")
    dead = dead_letter_headers(headers, reason=Reason.TIME_LIMIT, queue="cargo",
                               error={"type": "TimeLimitExceeded", "message": "too slow"},
                               now=WHEN)
    item = parse_dead_letter(body, dead, {"content_type": "application/json"}, "cargo").to_item()
    assert item == {"task_id": "t-9", "name": "calculate_distance", "queue": "cargo",
                    "reason": "time_limit", "dead_lettered_at": "2026-11-25T09:00:00.000Z",
                    "args": [3, 4], "kwargs": {},
                    "error": {"type": "TimeLimitExceeded", "message": "too slow"}}


def test_a_dead_letter_from_rabbitmq_takes_its_time_and_queue_from_x_death() -> None:
    body, headers = message("t-2")
    headers["x-death"] = [{"reason": "delivery_limit", "queue": "jobs", "time": 1764061200,
                           "count": 1, "exchange": "cargo.tasks"}]
    letter = parse_dead_letter(body, headers, {}, "cargo")
    assert letter.queue == "jobs"
    assert letter.reason == "delivery_limit"
    assert letter.dead_lettered_at == datetime.fromtimestamp(1764061200, UTC)
    assert letter.error is None


def test_a_poison_message_is_still_listed_with_what_can_be_told() -> None:
    letter = parse_dead_letter(b"\xff garbage", {"x-cargo-reason": "poison"},
                               {"message_id": "m-1"}, "cargo")
    assert (letter.task_id, letter.name, letter.args, letter.kwargs) == ("m-1", None, None, None)
    assert letter.reason == "poison"


def test_identify_reads_celery_headers_amqp_ids_and_dramatiq_bodies() -> None:
    body, headers = message("t-3")
    assert identify(headers, body) == ("t-3", "calculate_distance")
    dramatiq = json.dumps({"message_id": "d-1", "actor_name": "sleep"}).encode()
    assert identify({}, dramatiq) == ("d-1", "sleep")
    assert identify({}, b"?", {"correlation_id": "c-1"}) == ("c-1", None)


KNOWN = {"calculate_distance"}


@pytest.mark.parametrize(("headers", "body", "content_type", "problem"), [
    ({}, b"[]", "application/json", "no 'task' header"),
    ({"task": "calculate_distance", "id": "x"}, b"\xff", "application/json", "not JSON"),
    ({"task": "calculate_distance", "id": "x"}, b'{"a": 1}', "application/json",
     "[args, kwargs, embed]"),
    ({"task": "calculate_distance", "id": "x"}, b"\x80.", "application/x-python-serialize",
     "content type"),
    ({"task": "nope", "id": "x"}, b"[[], {}, {}]", "application/json", "no task named 'nope'"),
])
def test_poison_is_anything_a_worker_could_never_run(
    headers: dict, body: bytes, content_type: str, problem: str,  # type: ignore[type-arg]
) -> None:
    found = poison_problem(headers, body, {"content_type": content_type}, KNOWN)
    assert found is not None
    assert problem in found


def test_a_celery_message_for_a_known_task_is_not_poison() -> None:
    body, headers = message()
    assert poison_problem(headers, body, {"content_type": "application/json"}, KNOWN) is None


def test_backoff_grows_exponentially_up_to_its_maximum_with_jitter_in_the_upper_half() -> None:
    assert [backoff_delay(n, 1.0, 600, rand=lambda: 0.0) for n in range(4)] == [
        0.5, 1.0, 2.0, 4.0]
    assert [backoff_delay(n, 1.0, 600, rand=lambda: 1.0) for n in range(4)] == [
        1.0, 2.0, 4.0, 8.0]
    assert backoff_delay(30, 1.0, 600, rand=lambda: 1.0) == 600
    assert backoff_delay(10_000, 1.0, 600, rand=lambda: 0.5) == 450


def test_per_task_limits_from_the_environment_beat_the_catalog_which_beats_the_defaults() -> None:
    settings = load_settings({"CARGO_MEMORY_LIMIT_MB": "100", "CARGO_MAX_RETRIES": "4",
                              "CARGO_TASK_LIMITS": '{"leaky": {"memory_mb": 10}}'})
    leaky = resolve_policy("leaky", settings, memory_mb=50, max_retries=1, time_limit=9)
    plain = resolve_policy("plain", settings)
    assert (leaky.memory_limit_bytes, leaky.max_retries, leaky.time_limit) == (
        10 * 1024 * 1024, 1, 9)
    assert (plain.memory_limit_bytes, plain.max_retries, plain.time_limit) == (
        100 * 1024 * 1024, 4, 600)


def test_permanent_errors_and_type_errors_are_never_retried_others_until_the_budget_is_spent(
) -> None:
    policy = resolve_policy("t", load_settings({"CARGO_MAX_RETRIES": "2"}))
    assert not policy.should_retry(PermanentError("no"), 0)
    assert not policy.should_retry(TypeError("bad args"), 0)
    assert [policy.should_retry(RuntimeError("x"), n) for n in range(4)] == [
        True, True, False, False]


def test_a_message_with_its_own_retry_budget_is_retried_until_that_budget_is_spent() -> None:
    policy = resolve_policy("t", load_settings({"CARGO_MAX_RETRIES": "2"}))
    budget = policy.retry_budget(3)  # a bridged Dramatiq message's max_retries
    assert [policy.should_retry(RuntimeError("x"), n, budget) for n in range(5)] == [
        True, True, True, False, False]
    assert not policy.should_retry(PermanentError("no"), 0, budget)


@pytest.mark.parametrize("cursor", [Cursor(0, None), Cursor(3, ("2026-11-25T09:00:00+00:00",
                                                                "t-1"))])
def test_a_listing_cursor_round_trips_and_garbage_is_refused(cursor: Cursor) -> None:
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("x", "", "bm9wZQ", "eyJhIjoxfQ", "WyJ4Il0"):  # nope, {"a":1}, ["x"]
        with pytest.raises(ValueError, match="cursor"):
            Cursor.decode(bad)
