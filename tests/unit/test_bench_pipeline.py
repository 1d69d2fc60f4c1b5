"""bench.pipeline merges the sections' reports into one table and one results document."""

from __future__ import annotations

import pytest

from bench.pipeline import SectionOutcome, merge, render, section_args
from bench.sections import Row, SectionReport


def _outcomes() -> list[SectionOutcome]:
    e2e = SectionReport("e2e", [
        Row("end to end", "tasks/s", 800.0, 1000.0, "Celery", "higher", 1.0),
        Row("latency p50", "ms", 1.0, 1.2, "Celery", "lower", 1.0),
    ], raw={"rounds": 3})
    drain = SectionReport("drain", [
        Row("drain C=2", "tasks/s", 1800.0, 2000.0, "Celery", "higher", 0.8),
        Row("drain ceiling", "tasks/s", 1800.0, 6000.0, "Dramatiq", "higher"),
    ])
    return [SectionOutcome("e2e", "ok", report=e2e, seconds=12.0, returncode=0),
            SectionOutcome("drain", "ok", report=drain, seconds=30.0, returncode=0),
            SectionOutcome("bridge", "failed", message="exit 1", returncode=1),
            SectionOutcome("fanout", "skipped", message="bench/fanout.py is not here")]


def test_the_merged_rows_keep_the_sections_order_and_their_own_order() -> None:
    doc = merge(_outcomes())
    assert [row["figure"] for row in doc["rows"]] == [
        "end to end", "latency p50", "drain C=2", "drain ceiling"]
    assert doc["table"].count("\n") == 2 + 4 - 1  # header, rule, four rows


def test_the_merge_counts_goals_met_and_not_met_and_skips_informational_rows() -> None:
    assert merge(_outcomes())["goals"] == {"met": 2, "not_met": 1}


def test_sections_that_did_not_run_are_kept_with_why() -> None:
    sections = {s["name"]: s for s in merge(_outcomes())["sections"]}
    assert sections["bridge"]["status"] == "failed"
    assert sections["fanout"] == {"name": "fanout", "status": "skipped",
                                  "message": "bench/fanout.py is not here", "command": [],
                                  "seconds": None, "returncode": None}
    assert sections["e2e"]["raw"] == {"rounds": 3}
    assert "rows" not in sections["bridge"]


def test_the_printed_summary_names_each_section_that_did_not_run() -> None:
    outcomes = _outcomes()
    text = render(outcomes, merge(outcomes))
    assert "- bridge: failed: exit 1" in text
    assert "- fanout: skipped: bench/fanout.py is not here" in text
    assert text.endswith("goals met: 2 of 3")


def test_no_sections_make_an_empty_table_and_no_goals() -> None:
    doc = merge([])
    assert doc["rows"] == []
    assert doc["goals"] == {"met": 0, "not_met": 0}


def test_extra_arguments_go_to_the_section_they_name() -> None:
    assert section_args(["e2e=--tasks 2000", "drain=--messages 300", "e2e=--clients 8"]) == {
        "e2e": ["--tasks", "2000", "--clients", "8"], "drain": ["--messages", "300"]}


def test_extra_arguments_for_an_unknown_section_are_refused() -> None:
    with pytest.raises(ValueError, match="expected SECTION=ARGS"):
        section_args(["nosuch=--x 1"])
    with pytest.raises(ValueError, match="expected SECTION=ARGS"):
        section_args(["--tasks 2000"])
