"""The whole-message check a worker runs before Celery reads a task message."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest
from kombu.utils import json as kombu_json

from broker.celery_protocol import ProtocolError, check_task, encode_task
from broker.celery_validation import MAX_NESTING, TaskHeaders
from broker.deadletter import parse_dead_letter, poison_problem
from broker.topology import MAX_RETRIES_HEADER

JSON = {"content_type": "application/json", "content_encoding": "utf-8"}
KNOWN = {"calculate_distance"}


def good() -> tuple[bytes, dict[str, Any]]:
    message = encode_task("t-1", "calculate_distance", [3, 4])
    return message.body, dict(message.headers)


def test_a_message_as_the_gateway_encodes_it_passes_with_kombus_decoder_too() -> None:
    body, headers = good()
    task = check_task(body, headers, JSON, loads=kombu_json.loads)
    assert (task.task_id, task.name, task.args, task.kwargs, task.retries) == (
        "t-1", "calculate_distance", [3, 4], {}, 0)


def test_a_compressed_message_is_read_through_its_compression_header() -> None:
    body, headers = good()
    # kombu's application/x-gzip is zlib's format
    task = check_task(zlib.compress(body), {**headers, "compression": "application/x-gzip"},
                      JSON)
    assert task.args == [3, 4]


@pytest.mark.parametrize(("change", "named"), [
    ({"retries": "abc"}, "retries"),
    ({"retries": True}, "retries"),
    ({"retries": "9" * 5000}, "retries"),
    ({"timelimit": ["x", "y"]}, "timelimit"),
    ({"timelimit": [float("inf"), None]}, "timelimit"),
    ({"timelimit": [1]}, "timelimit"),
    ({"eta": 12345}, "eta"),
    ({"eta": "next tuesday"}, "eta"),
    ({"expires": "0001-01-01T00:00:00+14:00"}, "expires"),
    ({"argsrepr": ["x"]}, "argsrepr"),
    ({"root_id": 7}, "root_id"),
    ({"parent_id": {}}, "parent_id"),
    ({"group": 5}, "group"),
    ({"origin": [1]}, "origin"),
    ({"ignore_result": "yes"}, "ignore_result"),
    ({"id": 42}, "id"),
    ({"id": ""}, "id"),
    ({MAX_RETRIES_HEADER: "3"}, MAX_RETRIES_HEADER),
])
def test_a_header_of_the_wrong_type_is_poison_naming_the_header(
    change: dict[str, Any], named: str,
) -> None:
    body, headers = good()
    problem = poison_problem({**headers, **change}, body, JSON, KNOWN)
    assert problem is not None
    assert named in problem


@pytest.mark.parametrize(("body", "named"), [
    (b"[" * 100_000, "nested too deep"),
    (f"[[{'9' * 5000}], {{}}, {{}}]".encode(), "4300 digits"),
    (b"[[" + b"[" * (MAX_NESTING + 5) + b"]" * (MAX_NESTING + 5) + b"], {}, {}]",
     f"deeper than {MAX_NESTING}"),
    (b'[[], {}, {"callbacks": "x"}]', "callbacks"),
    (b'[[], {}, 3]', "embed"),
    (b'[[], {}]', "[args, kwargs, embed]"),
    (b'{"__type__": "datetime", "__value__": "junk"}', "not JSON"),
])
def test_a_body_that_cannot_be_read_as_celery_will_read_it_is_poison(
    body: bytes, named: str,
) -> None:
    _, headers = good()
    problem = poison_problem(headers, body, JSON, KNOWN, loads=kombu_json.loads)
    assert problem is not None
    assert named in problem


@pytest.mark.parametrize(("properties", "named"), [
    ({"content_type": "application/x-unknown"}, "content type"),
    ({}, "content_type"),
    ({"content_type": "application/json", "content_encoding": "utf-16"}, "encoding"),
    ({"content_type": "application/json", "priority": "high"}, "priority"),
])
def test_properties_celery_cannot_use_are_poison(properties: dict[str, Any], named: str) -> None:
    body, headers = good()
    problem = poison_problem(headers, body, properties, KNOWN)
    assert problem is not None
    assert named in problem


def test_a_compression_header_over_junk_is_poison() -> None:
    _, headers = good()
    problem = poison_problem({**headers, "compression": "application/x-gzip"}, b"\x00junk",
                             JSON, KNOWN)
    assert problem is not None
    assert "decompress" in problem


def test_the_check_never_raises_whatever_it_is_given() -> None:
    odd: list[Any] = [None, [], {1: 2}, {"task": "calculate_distance", "id": object()}]
    for headers in odd:
        assert poison_problem(headers, b"[" * 100_000, {"content_type": 5}, KNOWN)
    with pytest.raises(ProtocolError):
        check_task(b"[]", {"id": "x", "task": "t"}, None)


def test_the_max_retries_alias_is_the_topologys_header() -> None:
    assert TaskHeaders.model_fields["max_retries"].alias == MAX_RETRIES_HEADER


@pytest.mark.parametrize("body", [b"[" * 100_000, f"[[{'9' * 5000}], {{}}, {{}}]".encode(),
                                  b"\x00junk", b"\xff\xfe"])
def test_a_dead_letter_with_an_unreadable_body_is_listed_with_null_arguments_and_why(
    body: bytes,
) -> None:
    letter = parse_dead_letter(body, {"id": "t-9", "task": "calculate_distance",
                                      "x-cargo-reason": "poison"}, JSON, "cargo")
    item = letter.to_item()
    assert (item["task_id"], item["reason"], item["args"], item["kwargs"]) == (
        "t-9", "poison", None, None)
    assert item["undecodable"]
    json.dumps(item)  # the listing can always be serialised


def test_a_dead_letter_with_bad_headers_but_a_good_body_shows_its_arguments() -> None:
    body, headers = good()
    letter = parse_dead_letter(body, {**headers, "timelimit": ["x", "y"]}, JSON, "cargo")
    assert letter.args == [3, 4]
    assert letter.undecodable is None
