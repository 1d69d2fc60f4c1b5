"""The bridge's heartbeat: liveness and readiness from one small file."""

from __future__ import annotations

from pathlib import Path

from bridge.health import heartbeat_problem, write_heartbeat
from broker.settings import load_settings
from workers.policy import resolve_policy


def test_a_fresh_heartbeat_of_a_consuming_bridge_is_live_and_ready(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    write_heartbeat(path, True, ["default", "default.DQ"], now=1000.0)
    assert heartbeat_problem(str(path), 30, readiness=False, now=1010.0) is None
    assert heartbeat_problem(str(path), 30, readiness=True, now=1010.0) is None


def test_a_bridge_without_the_broker_is_live_but_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    write_heartbeat(path, False, [], now=1000.0)
    assert heartbeat_problem(str(path), 30, readiness=False, now=1010.0) is None
    assert "not connected" in str(heartbeat_problem(str(path), 30, readiness=True, now=1010.0))


def test_a_stale_heartbeat_fails_liveness(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    write_heartbeat(path, True, ["default"], now=1000.0)
    assert "not written for 31.0s" in str(heartbeat_problem(str(path), 30, readiness=False,
                                                              now=1031.0))


def test_no_heartbeat_file_fails_liveness(tmp_path: Path) -> None:
    assert "no heartbeat file" in str(heartbeat_problem(str(tmp_path / "none.json"), 30,
                                                         readiness=False))


def test_a_messages_own_retry_budget_replaces_the_tasks() -> None:
    policy = resolve_policy("calculate_distance", load_settings({}), max_retries=3)
    assert policy.retry_budget(0) == 0
    assert policy.retry_budget(7) == 7
    for invalid in (None, -1, 101, True, "2"):
        assert policy.retry_budget(invalid) == 3
