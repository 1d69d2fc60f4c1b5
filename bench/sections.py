"""What one benchmark section reports, so ``bench.pipeline`` can put them in one table.

Each section of the worker-path benchmark (end to end, latency, drain, CPU, fan-out,
bridge) is a module with a ``--json-out PATH`` option that writes a
:class:`SectionReport`: the rows of the summary table (a Cargo figure beside its
peer's from the same run, the ratio and the goal) and the raw measurements. The
sections run one at a time as subprocesses, so one of them crashing or hogging
memory cannot skew the next.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NoReturn

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Row:
    """One line of the summary: ``cargo`` against ``peer`` (same unit, same run)."""

    figure: str  # what is measured, e.g. "end to end, tasks/s (C=2)"
    unit: str  # "tasks/s", "ms", "ms CPU/task", "MB", "count"
    cargo: float | None
    peer: float | None
    peer_name: str  # e.g. "Celery delay()+get() over rpc://"
    better: Better = "higher"
    # The goal as a ratio bound: for "higher", cargo/peer >= goal; for "lower",
    # cargo/peer <= goal. None: informational (no goal).
    goal: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.cargo is None or self.peer is None or self.peer == 0:
            return None
        return self.cargo / self.peer

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        if self.goal is None or ratio is None:
            return None
        return ratio >= self.goal if self.better == "higher" else ratio <= self.goal

    def to_doc(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


@dataclass
class SectionReport:
    section: str
    rows: list[Row] = field(default_factory=list)
    # Everything measured, for the results file (rounds, CPU by process, versions...).
    raw: dict[str, Any] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        doc = {"section": self.section, "rows": [row.to_doc() for row in self.rows],
               "raw": self.raw}
        path.write_text(json.dumps(doc, indent=2, default=str))

    def save(self, json_out: Path | None, results: Path) -> Path:
        """Write to ``json_out``, else to ``results/<section>-<UTC time>.json``; print
        the table and the path (a section's command-line ending)."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = json_out or results / f"{self.section}-{stamp}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.write(path)
        print(f"\n{markdown_table(self.rows)}\n\n{path}")
        return path

    @classmethod
    def read(cls, path: Path) -> SectionReport:
        doc = json.loads(path.read_text())
        rows = [Row(**{k: v for k, v in row.items() if k not in ("ratio", "met")})
                for row in doc["rows"]]
        return cls(section=doc["section"], rows=rows, raw=doc.get("raw", {}))


def markdown_table(rows: list[Row]) -> str:
    """The README's benchmark table."""
    lines = ["| figure | Cargo | peer | Cargo / peer | goal |",
             "| --- | ---: | ---: | ---: | --- |"]
    for row in rows:
        ratio = row.ratio
        goal = "-" if row.goal is None else (
            f"{'>=' if row.better == 'higher' else '<='} {row.goal:g}x "
            f"({'met' if row.met else 'not met'})")
        lines.append(
            f"| {row.figure} | {_fmt(row.cargo)} {row.unit} | {row.peer_name}: "
            f"{_fmt(row.peer)} {row.unit} | {'-' if ratio is None else f'{ratio:.2f}x'} | {goal} |")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def quick_or_full(args: argparse.Namespace,
                  defaults: dict[str, tuple[int, int]]) -> argparse.Namespace:
    """Give each option left unset its ``(quick, full)`` default, as ``--quick`` says."""
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def run_section(measure: Callable[[argparse.Namespace], Coroutine[Any, Any, SectionReport]],
                args: argparse.Namespace, results: Path) -> NoReturn:
    """A section's command line: measure, save and print the report, exit 0."""
    report = asyncio.run(measure(args))
    report.save(args.json_out, results)
    sys.exit(0)


def conditions(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """When a section ran and how busy the machine was (``load_before``: its
    ``os.getloadavg()`` at the start), for a report's ``raw``."""
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        # Others' work on this machine and broker skews every figure: recorded, not removed.
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
    }
