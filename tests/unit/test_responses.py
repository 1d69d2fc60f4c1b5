"""The answers' shapes (``gateway.responses``) and the schemas generated from them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from broker.events import TaskEvent, TaskState
from gateway.errors import error_body
from gateway.openapi import build_openapi
from gateway.responses import DOCUMENTED, component_schemas
from gateway.store import TaskStore
from gateway.tasks_api import accepted_body


def validator(name: str) -> Draft202012Validator:
    document = build_openapi()
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                 "components": document["components"]})


def test_every_documented_answer_has_a_valid_component_schema_in_the_document() -> None:
    schemas = build_openapi()["components"]["schemas"]
    for shape in DOCUMENTED:
        Draft202012Validator.check_schema(schemas[shape.__name__])
    assert component_schemas().keys() <= schemas.keys()


def test_the_directly_formatted_202_body_fits_the_accepted_schema() -> None:
    task_id = "0b6f5a3c-9d2e-4f11-8a7b-3c2d1e0f9a8b"
    for name in ("calculate_distance", 'odd "name"\\ünï'):
        validator("Accepted").validate(json.loads(accepted_body(task_id, name)))


def test_a_key_the_shape_does_not_declare_fails_its_schema() -> None:
    body: dict[str, Any] = dict(error_body("unknown_task", "no such task"))
    validator("Error").validate(body)
    with pytest.raises(ValidationError):
        validator("Error").validate({**body, "extra": 1})
    with pytest.raises(ValidationError):
        validator("Error").validate({"error": {**body["error"], "hint": "x"}})


def test_task_documents_fit_the_task_schema_in_every_state() -> None:
    store = TaskStore(10)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    events = [TaskEvent("t", "calculate_distance", TaskState.QUEUED, t0, retries=0),
              TaskEvent("t", "calculate_distance", TaskState.STARTED, t0),
              TaskEvent("t", "calculate_distance", TaskState.PROGRESS, t0, progress={"done": 1}),
              TaskEvent("t", "calculate_distance", TaskState.FAILED, t0,
                        error={"type": "ValueError", "message": "boom"}),
              TaskEvent("t", "calculate_distance", TaskState.DEAD_LETTERED, t0,
                        reason="failed")]
    for event in events:
        store.apply(event)
        record = store.get("t")
        assert record is not None
        validator("Task").validate(record.to_json())
