"""The task catalog: which tasks exist, and which arguments fit them."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

from workers import tasks
from workers.catalog import InvalidArguments, TaskSpec, get_task_spec, task_specs
from workers.progress import reporting_to


def test_the_catalog_offers_calculate_distance_sleep_and_memory_leak_task() -> None:
    specs = task_specs()
    assert sorted(specs) == ["calculate_distance", "memory_leak_task", "sleep"]
    assert all(name == spec.name for name, spec in specs.items())
    assert get_task_spec("calculate_distance") is specs["calculate_distance"]
    assert get_task_spec("memory_leak_task") is specs["memory_leak_task"]
    assert get_task_spec("no_such_task") is None


def test_memory_leak_task_is_never_retried_and_may_run_as_long_as_it_is_allowed_to_leak() -> None:
    spec = task_specs()["memory_leak_task"]
    assert spec.max_retries == 0
    assert spec.time_limit is not None
    assert spec.time_limit > tasks.MAX_LEAK_SECONDS


def test_calculate_distance_is_the_euclidean_distance_from_the_origin() -> None:
    assert tasks.calculate_distance(3, 4) == 5.0
    assert tasks.calculate_distance(-6.0, 8.0) == 10.0
    assert tasks.calculate_distance(0, 0) == 0.0


def test_sleep_reports_each_step_and_returns_its_seconds() -> None:
    reports: list[dict[str, Any]] = []
    with reporting_to(reports.append):
        assert tasks.sleep(0.0, steps=3) == 0.0
    assert reports == [{"done": 1, "total": 3}, {"done": 2, "total": 3},
                       {"done": 3, "total": 3}]


def test_progress_reported_outside_a_worker_goes_nowhere() -> None:
    assert tasks.sleep(0.0, steps=2) == 0.0


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "expected"),
    [
        ("calculate_distance", [3, 4], {}, ([3.0, 4.0], {})),
        ("calculate_distance", [3.5], {"y": -4}, ([3.5], {"y": -4.0})),
        ("calculate_distance", [], {"x": 0, "y": 1e300}, ([], {"x": 0.0, "y": 1e300})),
        ("sleep", [1], {}, ([1.0], {})),
        ("sleep", [0], {"steps": 1000}, ([0.0], {"steps": 1000})),
        ("sleep", [3600, 1], {}, ([3600.0, 1], {})),
    ],
    ids=["ints-become-floats", "mixed-positional-and-keyword", "keywords-only",
         "default-steps", "most-steps", "longest-sleep"],
)
def test_arguments_that_fit_come_back_normalised_and_json_serialisable(
    name: str, args: list[Any], kwargs: dict[str, Any],
    expected: tuple[list[Any], dict[str, Any]],
) -> None:
    spec = get_task_spec(name)
    assert spec is not None
    normalised = spec.validate(args, kwargs)
    assert normalised == expected
    assert [type(v) for v in normalised[0]] == [type(v) for v in expected[0]]
    json.dumps(normalised, allow_nan=False)


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "loc", "msg"),
    [
        ("calculate_distance", [3], {}, ["args", 1], "missing required argument 'y'"),
        ("calculate_distance", [], {}, ["args", 0], "missing required argument 'x'"),
        ("calculate_distance", [1, 2, 3], {}, ["args"], "at most 2 positional"),
        ("calculate_distance", [1, 2], {"z": 3}, ["kwargs", "z"], "unexpected keyword"),
        ("calculate_distance", [1, 2], {"x": 3}, ["kwargs", "x"], "both positionally"),
        ("calculate_distance", ["3", 4], {}, ["args", 0], "valid number"),
        ("calculate_distance", [3], {"y": "4"}, ["kwargs", "y"], "valid number"),
        ("calculate_distance", [True, 4], {}, ["args", 0], "valid number"),
        ("calculate_distance", [math.nan, 4], {}, ["args", 0], "finite number"),
        ("calculate_distance", [3, -math.inf], {}, ["args", 1], "finite number"),
        ("calculate_distance", [None, 4], {}, ["args", 0], "valid number"),
        ("calculate_distance", [{"x": [1, {"y": 2}]}, 4], {}, ["args", 0], "valid number"),
        ("calculate_distance", [[3, 4], 4], {}, ["args", 0], "valid number"),
        ("calculate_distance", [10**400, 4], {}, ["args", 0], "valid number"),
        ("sleep", [-1], {}, ["args", 0], "greater than or equal to 0"),
        ("sleep", [3600.5], {}, ["args", 0], "less than or equal to 3600"),
        ("sleep", [1], {"steps": 0}, ["kwargs", "steps"], "greater than or equal to 1"),
        ("sleep", [1], {"steps": 1001}, ["kwargs", "steps"], "less than or equal to 1000"),
        ("sleep", [1], {"steps": 2.0}, ["kwargs", "steps"], "valid integer"),
        ("sleep", [1], {"steps": False}, ["kwargs", "steps"], "valid integer"),
    ],
    ids=["too-few", "none", "too-many", "unknown-kwarg", "duplicate", "string-positional",
         "string-keyword", "bool", "nan", "infinity", "null", "nested-junk", "list",
         "too-big-for-a-float", "negative-sleep", "sleep-over-an-hour", "zero-steps",
         "too-many-steps", "float-steps", "bool-steps"],
)
def test_arguments_that_do_not_fit_are_rejected_with_where_and_why(
    name: str, args: list[Any], kwargs: dict[str, Any], loc: list[Any], msg: str
) -> None:
    spec = get_task_spec(name)
    assert spec is not None
    with pytest.raises(InvalidArguments) as raised:
        spec.validate(args, kwargs)
    assert isinstance(raised.value, ValueError)
    matching = [e for e in raised.value.errors if e["loc"] == loc]
    assert matching, raised.value.errors
    assert msg in matching[0]["msg"]
    assert all(set(e) == {"loc", "msg"} for e in raised.value.errors)
    json.dumps(raised.value.errors)  # the gateway sends them as the 422's details


def test_every_problem_is_reported_at_once() -> None:
    spec = get_task_spec("calculate_distance")
    assert spec is not None
    with pytest.raises(InvalidArguments) as raised:
        spec.validate(["a"], {"z": 1})
    assert [e["loc"] for e in raised.value.errors] == [["kwargs", "z"], ["args", 0], ["args", 1]]
    assert "args.0" in str(raised.value)


def test_args_and_kwargs_of_the_wrong_shape_are_rejected() -> None:
    spec = get_task_spec("calculate_distance")
    assert spec is not None
    with pytest.raises(InvalidArguments):
        spec.validate({"x": 1}, {})  # type: ignore[arg-type]


def test_a_parameter_named_like_a_pydantic_attribute_is_validated_like_any_other() -> None:
    def weird(schema: int, model_config: str = "x") -> None:
        pass

    spec = TaskSpec("weird", weird)
    assert spec.validate([1], {"model_config": "y"}) == ([1], {"model_config": "y"})
    with pytest.raises(InvalidArguments):
        spec.validate(["1"], {})


def test_the_catalog_does_not_import_celery() -> None:
    code = ("import sys, workers.catalog; workers.catalog.task_specs(); "
            "sys.exit(1 if any(m == 'celery' or m.startswith('celery.') for m in sys.modules) "
            "else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_arguments_already_of_the_declared_types_pass_unchanged_and_others_still_validate() -> None:
    spec = get_task_spec("calculate_distance")
    assert spec is not None
    # The shortcut for exact types must give what the full validation gives.
    assert spec.validate([3.0, 4.0], {}) == ([3.0, 4.0], {})
    assert spec.validate([3, 4.0], {}) == ([3.0, 4.0], {})
    for bad in ([float("nan"), 1.0], [float("inf"), 1.0], ["3", 4.0], [True, 4.0], [1.0]):
        with pytest.raises(InvalidArguments):
            spec.validate(bad, {})
