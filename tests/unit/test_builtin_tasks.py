"""Cargo's built-in tasks as plain functions (``workers.tasks``; ``workers.builtin``
registers them as Celery shared tasks)."""

from __future__ import annotations

from typing import Any

from workers import tasks
from workers.progress import reporting_to


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
