"""The heartbeat file's verdicts, one situation each."""

from __future__ import annotations

import json
from pathlib import Path

from workers.health import heartbeat_problem
from workers.metrics import exception_type

NOW = 1_000_000.0


def beat(tmp_path: Path, *, written: float, loop: float, connected: bool) -> str:
    path = tmp_path / "hb.json"
    path.write_text(json.dumps({"written_at": written, "loop_at": loop, "connected": connected}))
    return str(path)


def test_a_fresh_connected_heartbeat_is_live_and_ready(tmp_path: Path) -> None:
    path = beat(tmp_path, written=NOW - 1, loop=NOW - 1, connected=True)
    assert heartbeat_problem(path, 30, readiness=False, now=NOW) is None
    assert heartbeat_problem(path, 30, readiness=True, now=NOW) is None


def test_a_file_nobody_writes_any_more_is_not_live(tmp_path: Path) -> None:
    path = beat(tmp_path, written=NOW - 31, loop=NOW - 31, connected=True)
    assert "frozen" in (heartbeat_problem(path, 30, readiness=False, now=NOW) or "")


def test_a_connected_consumer_loop_that_stopped_ticking_is_stuck(tmp_path: Path) -> None:
    path = beat(tmp_path, written=NOW, loop=NOW - 31, connected=True)
    assert "stuck" in (heartbeat_problem(path, 30, readiness=False, now=NOW) or "")


def test_a_disconnected_worker_is_live_but_not_ready(tmp_path: Path) -> None:
    path = beat(tmp_path, written=NOW, loop=NOW - 300, connected=False)
    assert heartbeat_problem(path, 30, readiness=False, now=NOW) is None
    assert "not connected" in (heartbeat_problem(path, 30, readiness=True, now=NOW) or "")


def test_a_missing_or_garbled_file_is_unhealthy_with_a_reason(tmp_path: Path) -> None:
    assert "no heartbeat file" in (heartbeat_problem(str(tmp_path / "none"), 30,
                                                     readiness=False) or "")
    (tmp_path / "bad").write_text("{")
    assert "unreadable" in (heartbeat_problem(str(tmp_path / "bad"), 30, readiness=False) or "")


def test_the_failed_counters_exception_label_is_the_exception_class() -> None:
    assert exception_type("RuntimeError('boom (again)')") == "RuntimeError"
    assert exception_type(None) == "unknown"
