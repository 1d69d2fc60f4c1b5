"""What ``cargoctl watch`` shows on a terminal: one row per task, with a progress bar.

:class:`WatchBoard` folds the gateway's task documents (``GET /tasks/{id}``) and
WebSocket events into rows and renders them as a rich table; it does no I/O,
so it is tested on its own.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, TypeGuard

from rich.console import RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from cargoctl.tables import TERMINAL_STATES, error_summary, short_json, state_text, truncated

# A terminal this wide shows whole task ids (36 characters) and long bars.
WIDE = 120
BAR_WIDTH = 20
NARROW_BAR_WIDTH = 10
SHORT_ID = 8
# Keys a task's progress may count with (``report_progress(done=3, total=10)``).
_DONE_KEYS = ("done", "current", "completed", "n")


def progress_fraction(progress: Any) -> float | None:
    """How far a task says it is, 0 to 1, when its progress counts (``{"done", "total"}``
    or ``{"percent"}``); None for progress that does not (``{"leaked_mb": 12}``)."""
    if not isinstance(progress, dict):
        return None
    total = progress.get("total")
    if _number(total) and total > 0:
        for key in _DONE_KEYS:
            if _number(progress.get(key)):
                return float(min(max(progress[key] / total, 0.0), 1.0))
    for key in ("percent", "percentage"):
        if _number(progress.get(key)):
            return float(min(max(progress[key] / 100, 0.0), 1.0))
    return None


def progress_label(progress: Any) -> str:
    """``3/10``, ``42%``, or the progress as ``key=value`` pairs."""
    if progress is None:
        return ""
    if isinstance(progress, dict):
        total = progress.get("total")
        for key in _DONE_KEYS:
            if _number(progress.get(key)) and _number(total):
                return f"{progress[key]:g}/{total:g}"
        for key in ("percent", "percentage"):
            if _number(progress.get(key)):
                return f"{progress[key]:g}%"
        return truncated(" ".join(f"{k}={_scalar(v)}" for k, v in progress.items()), 40)
    return short_json(progress, 40)


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class TaskRow:
    task_id: str
    name: str = ""
    state: str = ""
    progress: Any = None
    outcome: str = ""
    retries: int = 0
    updated: str = ""

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES


class WatchBoard:
    """Rows in the order tasks were first seen; at most ``max_rows`` shown (the newest)."""

    def __init__(self, max_rows: int = 50) -> None:
        self.max_rows = max_rows
        self.rows: dict[str, TaskRow] = {}
        self.waiting: set[str] = set()  # ids the gateway does not know (yet)

    def expect(self, task_id: str) -> None:
        """An id the gateway did not know when asked: shown as waiting until it appears."""
        self.waiting.add(task_id)
        self.rows.setdefault(task_id, TaskRow(task_id))

    def apply(self, doc: dict[str, Any]) -> None:
        """Fold a task document or an event (the same fields, API.md) into its row."""
        task_id = str(doc.get("task_id", ""))
        self.waiting.discard(task_id)
        row = self.rows.setdefault(task_id, TaskRow(task_id))
        state = str(doc.get("state", row.state))
        if state == "started" and row.state != "started":
            row.progress = None  # a new attempt counts from the start
            row.outcome = ""
        row.name = str(doc.get("name") or row.name)
        row.state = state
        if "progress" in doc:
            row.progress = doc["progress"]
        if isinstance(doc.get("retries"), int):
            row.retries = doc["retries"]
        row.updated = str(doc.get("ts") or doc.get("finished_at") or doc.get("started_at")
                          or doc.get("submitted_at") or row.updated)
        row.outcome = _outcome(doc, row.outcome)

    def visible(self) -> list[TaskRow]:
        rows = list(self.rows.values())
        return rows[-self.max_rows:] if len(rows) > self.max_rows else rows

    def render(self, width: int = WIDE) -> Table:
        """The table for a terminal ``width`` columns wide: below :data:`WIDE`, ids are
        cut to their first 8 characters and bars are shorter, so the outcome still fits."""
        wide = width >= WIDE
        bar_width = BAR_WIDTH if wide else NARROW_BAR_WIDTH
        table = Table(title_justify="left", expand=False)
        table.add_column("task_id", no_wrap=True)
        table.add_column("name", style="bold", no_wrap=True)
        table.add_column("state", no_wrap=True)
        table.add_column("progress", no_wrap=True)
        table.add_column("outcome")
        for row in self.visible():
            task_id = row.task_id if wide else truncated(row.task_id, SHORT_ID + 1)
            if row.task_id in self.waiting:
                table.add_row(task_id, "", Text("not known yet", style="dim italic"), "", "")
                continue
            table.add_row(task_id, row.name, self._state(row), self._bar(row, bar_width),
                          row.outcome)
        table.caption = self.summary()
        return table

    def summary(self) -> str:
        counts = Counter(row.state for row in self.rows.values() if row.task_id not in
                         self.waiting)
        parts = [f"{n} {state}" for state, n in sorted(counts.items())]
        hidden = len(self.rows) - len(self.visible())
        if hidden:
            parts.append(f"{hidden} earlier not shown")
        if self.waiting:
            parts.append(f"{len(self.waiting)} not known yet")
        return f"{len(self.rows)} task{'s' if len(self.rows) != 1 else ''}: " + ", ".join(parts)

    @staticmethod
    def _state(row: TaskRow) -> Text:
        text = state_text(row.state)
        if row.retries:
            text.append(f" (retry {row.retries})", style="dim")
        return text

    @staticmethod
    def _bar(row: TaskRow, width: int) -> RenderableType:
        fraction = progress_fraction(row.progress)
        if row.state == "succeeded":
            fraction = 1.0
        label = progress_label(row.progress)
        if fraction is None:
            return Text(label, style="dim")
        grid = Table.grid(padding=(0, 1))
        # Named colours: the theme's RGB ones turn grey on a 16-colour terminal.
        colour = {"dead_lettered": "red", "revoked": "magenta"}.get(row.state)
        grid.add_row(ProgressBar(total=1.0, completed=fraction, width=width,
                                 complete_style=colour or "cyan",
                                 finished_style=colour or "green"),
                     label or f"{fraction:.0%}")
        return grid


def _outcome(doc: dict[str, Any], previous: str) -> str:
    state = doc.get("state")
    if state == "succeeded":
        return f"result {short_json(doc.get('result'), 40)}"
    if state == "dead_lettered":
        reason = doc.get("reason") or "dead-lettered"
        error = error_summary(doc.get("error"))
        return f"{reason}: {error}" if error else str(reason)
    if state in ("failed", "retrying"):
        return error_summary(doc.get("error")) or previous
    if state == "revoked":
        return "revoked"
    return previous
