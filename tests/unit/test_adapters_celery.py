"""workers.celery_state_adapter still holds for the installed Celery: the worker's module-level
bookkeeping it reads is the one Celery keeps when it reserves and finishes a request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery.worker import state

from tests.unit.adapter_pins import assert_pinned, changed
from workers import celery_state_adapter
from workers.celery_state_adapter import (
    forget_request,
    held_count,
    held_elsewhere,
    running_count,
    running_requests,
    succeeded_here,
    warm_shutdown_requested,
)


class Request:
    """What Celery's bookkeeping needs of a request: an id, a name, being weakly referable."""

    name = "adapter-test"

    def __init__(self, task_id: str) -> None:
        self.id = task_id


@pytest.fixture
def requests() -> Iterator[list[Request]]:
    made = [Request("task-1"), Request("task-1"), Request("task-2")]
    accepted = state.all_total_count[0]
    yield made
    state.total_count.pop(Request.name, None)
    state.all_total_count[0] = accepted
    for request in made:  # leave Celery's process-wide state as it was
        state.task_ready(request)
        state.successful_requests.discard(request.id)


def test_celery_is_the_version_the_adapter_was_written_against() -> None:
    assert_pinned(celery_state_adapter)


def test_what_celery_reserves_is_what_the_adapter_counts(requests: list[Request]) -> None:
    before = held_count()
    for request in requests:
        state.task_reserved(request)  # what Celery's consumer calls on taking a message
    problem = changed("celery", celery_state_adapter, "worker.state.reserved_requests")
    assert held_count() == before + 3, problem
    assert held_elsewhere(requests[0]), problem
    assert not held_elsewhere(requests[2]), problem


def test_a_forgotten_request_is_no_longer_held(requests: list[Request]) -> None:
    state.task_reserved(requests[0])
    forget_request(requests[0])
    assert not held_elsewhere(requests[1]), changed(
        "celery", celery_state_adapter, "worker.state.task_ready")


def test_what_celery_records_as_successful_is_what_the_adapter_finds(
        requests: list[Request]) -> None:
    state.task_ready(requests[2], successful=True)  # what Celery calls on a success
    assert succeeded_here("task-2"), changed(
        "celery", celery_state_adapter, "worker.state.successful_requests")
    assert not succeeded_here("task-1")


def test_what_celery_marks_active_is_what_the_adapter_finds_running(
        requests: list[Request]) -> None:
    before = running_count()
    state.task_accepted(requests[0])  # what Celery calls when a pool process takes it
    problem = changed("celery", celery_state_adapter, "worker.state.active_requests")
    assert running_count() == before + 1, problem
    assert requests[0] in running_requests(), problem


def test_a_warm_shutdown_is_read_from_celerys_should_stop() -> None:
    assert hasattr(state, "should_stop"), changed(
        "celery", celery_state_adapter, "worker.state.should_stop (gone)")
    before: Any = state.should_stop
    shared: Any = state  # the module's annotations say should_stop is always None
    try:
        shared.should_stop = None
        assert not warm_shutdown_requested()
        shared.should_stop = 0  # EX_OK: a warm shutdown with exit code 0
        assert warm_shutdown_requested()
    finally:
        shared.should_stop = before
