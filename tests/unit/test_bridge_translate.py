"""Dramatiq message -> Celery task: what the bridge publishes for what a producer sent.

Messages are built by the real ``dramatiq`` library (``Message.encode``), so the
tests read what a Dramatiq producer really puts on the wire.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import pytest

from bridge.translate import (
    DramatiqMessage,
    Translation,
    Untranslatable,
    parse_message,
    translate,
)
from broker.celery_protocol import CONTENT_TYPE, check_task
from broker.topology import MAX_RETRIES_HEADER

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
NOW_MS = NOW.timestamp() * 1000
KNOWN = {"calculate_distance", "sleep"}
LIMITS = {"calculate_distance": 600.0, "sleep": 120.0}


def wire(actor: str = "calculate_distance", args: tuple[Any, ...] = (3, 4),
         kwargs: dict[str, Any] | None = None, queue: str = "default",
         **options: Any) -> bytes:
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=queue, actor_name=actor, args=args, kwargs=kwargs or {}, options=options,
        message_timestamp=int(NOW_MS))
    return message.encode()


def bridged(body: bytes, queue: str = "default") -> Translation:
    return translate(parse_message(body), queue=queue, known_tasks=KNOWN, time_limits=LIMITS,
                     now=NOW, origin="test@host")


def test_a_dramatiq_message_becomes_a_celery_task_of_the_same_name_under_its_message_id() -> None:
    body = wire(kwargs={"unit": "m"})
    sent = json.loads(body)
    result = bridged(body)
    task = check_task(result.task.body, result.task.headers, {"content_type": CONTENT_TYPE})
    assert (task.task_id, task.name) == (sent["message_id"], "calculate_distance")
    assert (task.args, task.kwargs) == ([3, 4], {"unit": "m"})
    assert result.queue == "default"
    assert result.countdown is None
    assert result.task.headers["eta"] is None
    assert result.task.headers["expires"] is None


def test_an_eta_in_the_future_becomes_the_celery_eta_and_a_countdown() -> None:
    result = bridged(wire(queue="default.DQ", eta=int(NOW_MS) + 5000))
    assert result.queue == "default"  # the delay queue's message is for its queue
    assert result.countdown == pytest.approx(5.0)
    assert result.task.headers["eta"] == (NOW + timedelta(seconds=5)).isoformat()


def test_a_countdown_is_rounded_up_to_whole_seconds_so_it_never_runs_early() -> None:
    assert bridged(wire(queue="default.DQ", eta=int(NOW_MS) + 2200)).countdown == 3.0


def test_an_eta_already_past_runs_at_once() -> None:
    result = bridged(wire(queue="default.DQ", eta=int(NOW_MS) - 5000))
    assert result.countdown is None
    assert result.task.headers["eta"] is None


def test_max_age_becomes_expires_counted_from_the_message_timestamp() -> None:
    result = bridged(wire(max_age=60_000))
    assert result.task.headers["expires"] == (NOW + timedelta(minutes=1)).isoformat()


def test_time_limit_becomes_the_hard_time_limit_in_seconds() -> None:
    result = bridged(wire(time_limit=1500))
    assert result.task.headers["timelimit"] == [1.5, None]


def test_a_time_limit_above_the_tasks_own_is_capped_at_the_tasks() -> None:
    result = bridged(wire(actor="sleep", args=(1,), time_limit=3_600_000))
    assert result.task.headers["timelimit"] == [120.0, None]


def test_max_retries_travels_as_the_messages_own_retry_budget() -> None:
    assert bridged(wire(max_retries=1)).task.headers[MAX_RETRIES_HEADER] == 1
    assert MAX_RETRIES_HEADER not in bridged(wire()).task.headers


def test_retries_already_spent_carry_over() -> None:
    assert bridged(wire(retries=2)).task.headers["retries"] == 2


def test_an_actor_with_no_cargo_task_is_untranslatable() -> None:
    with pytest.raises(Untranslatable, match="no Cargo task named 'send_email'"):
        bridged(wire(actor="send_email"))


@pytest.mark.parametrize("option", ["pipe_target", "on_success", "on_failure",
                                    "group_completion_uuid"])
def test_pipelines_callbacks_and_groups_are_untranslatable(option: str) -> None:
    options: dict[str, Any] = {option: {"actor_name": "x"}}
    with pytest.raises(Untranslatable, match=option):
        bridged(wire(**options))


@pytest.mark.parametrize("body", [
    b"\x80\x04garbage",
    b"[1, 2, 3]",
    b'{"actor_name": "calculate_distance"}',
    json.dumps({"queue_name": "default", "actor_name": "calculate_distance", "args": {},
                "kwargs": {}, "options": {}, "message_id": "a",
                "message_timestamp": 1}).encode(),
    json.dumps({"queue_name": "default", "actor_name": "calculate_distance", "args": [],
                "kwargs": {}, "options": {}, "message_id": "",
                "message_timestamp": 1}).encode(),
])
def test_anything_that_is_not_a_dramatiq_message_is_untranslatable(body: bytes) -> None:
    with pytest.raises(Untranslatable):
        bridged(body)


@pytest.mark.parametrize("options", [{"eta": "soon"}, {"max_age": -1}, {"time_limit": True},
                                     {"retries": "two"}, {"max_retries": -1}])
def test_malformed_options_are_untranslatable(options: dict[str, Any]) -> None:
    with pytest.raises(Untranslatable):
        bridged(wire(**options))


def test_parsing_keeps_every_field_of_the_wire_format() -> None:
    parsed = parse_message(wire(args=(1, 2), kwargs={"k": 1}, eta=5))
    assert isinstance(parsed, DramatiqMessage)
    assert (parsed.queue_name, parsed.actor_name, parsed.args, parsed.kwargs) == (
        "default", "calculate_distance", [1, 2], {"k": 1})
    assert parsed.options == {"eta": 5}
    assert parsed.message_timestamp == int(NOW_MS)
