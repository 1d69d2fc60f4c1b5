"""The worker-path benchmark's table: ratios, goals in both directions, missing figures."""

from __future__ import annotations

from pathlib import Path

from bench.sections import Row, SectionReport, markdown_table


def test_a_higher_is_better_row_meets_its_goal_at_or_above_the_ratio() -> None:
    row = Row("end to end", "tasks/s", 1200.0, 1000.0, "Celery", "higher", 1.0)
    assert row.ratio == 1.2
    assert row.met is True
    assert Row("e", "tasks/s", 900.0, 1000.0, "Celery", "higher", 1.0).met is False


def test_a_lower_is_better_row_meets_its_goal_at_or_below_the_ratio() -> None:
    assert Row("p99", "ms", 3.0, 2.0, "Celery", "lower", 1.5).met is True
    assert Row("p99", "ms", 3.2, 2.0, "Celery", "lower", 1.5).met is False


def test_a_row_without_a_peer_figure_or_goal_has_no_verdict() -> None:
    assert Row("clients", "ms", 0.5, None, "-", "lower").ratio is None
    assert Row("clients", "ms", 0.5, None, "-", "lower", 1.0).met is None
    assert Row("rabbitmq", "ms", 1.0, 2.0, "Celery", "lower").met is None


def test_the_table_shows_each_figure_beside_its_peer_with_ratio_and_verdict() -> None:
    table = markdown_table([
        Row("end to end", "tasks/s", 650.0, 1239.0, "Celery rpc", "higher", 1.0),
        Row("latency p50", "ms", 1.4, 1.48, "Celery rpc", "lower", 1.0),
        Row("clients", "ms CPU/task", 0.5, None, "-", "lower"),
    ])
    lines = table.splitlines()
    assert lines[0] == "| figure | Cargo | peer | Cargo / peer | goal |"
    assert lines[2] == ("| end to end | 650 tasks/s | Celery rpc: 1,239 tasks/s | 0.52x "
                        "| >= 1x (not met) |")
    assert lines[3] == "| latency p50 | 1.40 ms | Celery rpc: 1.48 ms | 0.95x | <= 1x (met) |"
    assert lines[4] == "| clients | 0.50 ms CPU/task | -: - ms CPU/task | - | - |"


def test_a_section_report_reads_back_what_was_written(tmp_path: Path) -> None:
    report = SectionReport("e2e", [Row("p99", "ms", 3.0, 2.0, "Celery", "lower", 1.5,
                                       note="n")], raw={"rounds": [1, 2]})
    report.write(tmp_path / "e2e.json")
    assert SectionReport.read(tmp_path / "e2e.json") == report
