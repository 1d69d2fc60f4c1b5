"""broker.arguments: a call's args/kwargs against the JSON Schema a worker announced,
reported where the client put each problem, in pydantic's words (the cases of the
the old static catalog's tests, now against the announced schemas of the built-in tasks)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from broker.arguments import ArgumentsSchema, InvalidArguments, InvalidSchema
from tests.support.catalog import builtin_tasks


def schema_of(name: str) -> ArgumentsSchema:
    return ArgumentsSchema(next(t for t in builtin_tasks() if t.name == name).arguments)


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("calculate_distance", [3, 4], {}),
        ("calculate_distance", [3.5], {"y": -4}),
        ("calculate_distance", [], {"x": 0, "y": 1e300}),
        ("sleep", [1], {}),
        ("sleep", [0], {"steps": 1000}),
        ("sleep", [3600, 1], {}),
        ("memory_leak_task", [], {}),
    ],
    ids=["ints-are-numbers", "mixed-positional-and-keyword", "keywords-only",
         "default-steps", "most-steps", "longest-sleep", "all-defaults"],
)
def test_arguments_that_fit_are_accepted(name: str, args: list[Any],
                                         kwargs: dict[str, Any]) -> None:
    schema_of(name).validate(args, kwargs)  # raises otherwise


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "loc", "msg"),
    [
        ("calculate_distance", [3], {}, ["args", 1], "missing required argument 'y'"),
        ("calculate_distance", [], {}, ["args", 0], "missing required argument 'x'"),
        ("calculate_distance", [1, 2, 3], {}, ["args"], "at most 2 positional"),
        ("calculate_distance", [1, 2], {"z": 3}, ["kwargs", "z"], "unexpected keyword"),
        ("calculate_distance", [1, 2], {"x": 3}, ["kwargs", "x"], "both positionally"),
        ("calculate_distance", ["3", 4], {}, ["args", 0], "Input should be a valid number"),
        ("calculate_distance", [3], {"y": "4"}, ["kwargs", "y"], "valid number"),
        ("calculate_distance", [True, 4], {}, ["args", 0], "valid number"),
        ("calculate_distance", [math.nan, 4], {}, ["args", 0], "finite number"),
        ("calculate_distance", [3, -math.inf], {}, ["args", 1], "finite number"),
        ("calculate_distance", [None, 4], {}, ["args", 0], "valid number"),
        ("calculate_distance", [{"x": [1, {"y": 2}]}, 4], {}, ["args", 0], "valid number"),
        ("calculate_distance", [[3, 4], 4], {}, ["args", 0], "valid number"),
        ("calculate_distance", [10**400, 4], {}, ["args", 0], "valid number"),
        ("sleep", [-1], {}, ["args", 0], "Input should be greater than or equal to 0"),
        ("sleep", [3600.5], {}, ["args", 0], "Input should be less than or equal to 3600"),
        ("sleep", [1], {"steps": 0}, ["kwargs", "steps"], "greater than or equal to 1"),
        ("sleep", [1], {"steps": 1001}, ["kwargs", "steps"], "less than or equal to 1000"),
        ("sleep", [1], {"steps": 2.0}, ["kwargs", "steps"], "Input should be a valid integer"),
        ("sleep", [1], {"steps": False}, ["kwargs", "steps"], "valid integer"),
        ("memory_leak_task", [0], {}, ["args", 0], "Input should be greater than 0"),
    ],
    ids=["too-few", "none", "too-many", "unknown-kwarg", "duplicate", "string-positional",
         "string-keyword", "bool", "nan", "infinity", "null", "nested-junk", "list",
         "too-big-for-a-float", "negative-sleep", "sleep-over-an-hour", "zero-steps",
         "too-many-steps", "float-steps", "bool-steps", "no-leak"],
)
def test_arguments_that_do_not_fit_are_rejected_with_where_and_why(
    name: str, args: list[Any], kwargs: dict[str, Any], loc: list[Any], msg: str
) -> None:
    with pytest.raises(InvalidArguments) as raised:
        schema_of(name).validate(args, kwargs)
    matching = [e for e in raised.value.errors if e["loc"] == loc]
    assert matching, raised.value.errors
    assert msg in matching[0]["msg"]
    assert all(set(e) == {"loc", "msg"} for e in raised.value.errors)
    json.dumps(raised.value.errors)  # the gateway sends them as the 422's details


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidArguments) as raised:
        schema_of("calculate_distance").validate(["a"], {"z": 1})
    assert sorted(map(str, (e["loc"] for e in raised.value.errors))) == sorted(
        map(str, [["kwargs", "z"], ["args", 0], ["args", 1]]))
    assert "args.0" in str(raised.value)


def test_args_and_kwargs_of_the_wrong_shape_are_rejected() -> None:
    with pytest.raises(InvalidArguments):
        schema_of("calculate_distance").validate({"x": 1}, {})
    with pytest.raises(InvalidArguments):
        schema_of("calculate_distance").validate([1, 2], [])


def test_the_fast_path_for_exact_types_agrees_with_the_full_validation() -> None:
    schema = schema_of("calculate_distance")
    schema.validate([3.0, 4.0], {})
    schema.validate([3, 4.0], {})
    for bad in ([float("nan"), 1.0], [float("inf"), 1.0], ["3", 4.0], [True, 4.0], [1.0]):
        with pytest.raises(InvalidArguments):
            schema.validate(bad, {})


def test_a_parameter_named_like_a_schema_keyword_is_validated_like_any_other() -> None:
    schema = ArgumentsSchema({"type": "object", "properties": {
        "type": {"type": "integer"}, "properties": {"type": "string"}},
        "required": ["type"], "additionalProperties": False,
        "x-cargo-positional": ["type", "properties"]})
    schema.validate([1], {"properties": "y"})
    with pytest.raises(InvalidArguments) as raised:
        schema.validate(["1"], {})
    assert raised.value.errors == [{"loc": ["args", 0], "msg": "Input should be a valid integer"}]


def test_positional_only_parameters_may_not_come_by_keyword_and_varargs_pass_unchecked() -> None:
    schema = ArgumentsSchema({"type": "object", "properties": {"a": {"type": "integer"}},
                              "required": ["a"], "additionalProperties": False,
                              "x-cargo-positional": ["a"], "x-cargo-positional-only": ["a"],
                              "x-cargo-varargs": True})
    schema.validate([1, "anything", None], {})
    with pytest.raises(InvalidArguments) as raised:
        schema.validate([], {"a": 1})
    assert {"loc": ["kwargs", "a"], "msg": "unexpected keyword argument"} in raised.value.errors


@pytest.mark.parametrize(
    "schema",
    [
        [],
        {"type": "array"},
        {"type": "object", "properties": {"a": {"type": "no-such-type"}}},
        {"type": "object", "properties": {"a": {"$ref": "https://example.com/evil.json"}}},
        {"type": "object", "properties": {}, "x-cargo-positional": ["missing"]},
        {"type": "object", "properties": {"a": {}}, "x-cargo-positional": [],
         "x-cargo-positional-only": ["a"]},
        {"type": "object", "x-cargo-varargs": "yes"},
    ],
    ids=["not-an-object", "not-type-object", "bad-json-schema", "remote-ref",
         "positional-not-a-property", "positional-only-not-positional", "varargs-not-bool"],
)
def test_a_schema_cargo_cannot_check_is_refused(schema: Any) -> None:
    with pytest.raises(InvalidSchema):
        ArgumentsSchema(schema)
