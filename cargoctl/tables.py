"""The gateway's documents as rich tables for people (``--output table``); pure functions.

Each takes the JSON the gateway sent (API.md) and returns a renderable; cells
summarise (an error's type and message, a schema's parameters), ``--output
json`` has everything.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

TERMINAL_STATES = frozenset({"succeeded", "dead_lettered", "revoked"})

STATE_STYLES = {
    "queued": "dim",
    "started": "cyan",
    "progress": "cyan",
    "failed": "yellow",
    "retrying": "yellow",
    "succeeded": "green",
    "dead_lettered": "bold red",
    "revoked": "magenta",
}

MAX_CELL = 60


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def short_json(value: Any, limit: int = MAX_CELL) -> str:
    """``value`` as compact JSON, cut to ``limit`` characters with an ellipsis."""
    return truncated(json.dumps(value, separators=(", ", ": "), ensure_ascii=False), limit)


def truncated(text: str, limit: int = MAX_CELL) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def error_summary(error: Any) -> str:
    """``{"type", "message"}`` as ``Type: message``."""
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message")
        if kind and message:
            return f"{kind}: {message}"
        return str(kind or message or short_json(error))
    return "" if error is None else str(error)


def arguments_summary(schema: Any) -> str:
    """A task's JSON Schema as its parameters, in call order: ``x: number, steps: integer = 1``."""
    if not isinstance(schema, dict):
        return "?"
    if "allOf" in schema:
        return "several schemas (a rolling deploy); see --output json"
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return "?"
    if not properties:
        return "none"
    order = [*schema.get("x-cargo-positional", []),
             *[name for name in properties if name not in schema.get("x-cargo-positional", [])]]
    parts = []
    for name in order:
        spec = properties.get(name)
        if not isinstance(spec, dict):
            continue
        part = f"{name}: {_type_of(spec)}"
        if "default" in spec:
            part += f" = {short_json(spec['default'], 20)}"
        parts.append(part)
    return ", ".join(parts)


def _type_of(spec: dict[str, Any]) -> str:
    kind = spec.get("type")
    if isinstance(kind, list):
        return " | ".join(map(str, kind))
    if isinstance(kind, str):
        return kind
    for key in ("anyOf", "oneOf"):
        options = spec.get(key)
        if isinstance(options, list):
            return " | ".join(_type_of(o) for o in options if isinstance(o, dict))
    return "any"


def limits_summary(limits: Any) -> str:
    if not isinstance(limits, dict):
        return ""
    parts = []
    if limits.get("time_limit") is not None:
        parts.append(f"time {limits['time_limit']:g}s")
    if limits.get("soft_time_limit") is not None:
        parts.append(f"soft {limits['soft_time_limit']:g}s")
    if limits.get("memory_limit_mb") is not None:
        parts.append(f"memory {limits['memory_limit_mb']} MiB")
    if limits.get("max_retries") is not None:
        parts.append(f"retries {limits['max_retries']}")
    return ", ".join(parts)


def stacked(first: str | Text, second: str, style: str = "dim") -> Text:
    """Two values in one cell, the second on its own line, dimmed: narrower than two columns."""
    text = first.copy() if isinstance(first, Text) else Text(first)
    if second:
        text.append("\n" + second, style=style)
    return text


def catalog_table(doc: dict[str, Any]) -> Table:
    """``GET /catalog``: one row per task a live worker offers."""
    items = doc.get("items") or []
    table = Table(title="Tasks live workers offer", title_justify="left")
    table.add_column("task / queue", no_wrap=True)
    table.add_column("arguments")
    table.add_column("limits")
    table.add_column("workers")
    table.add_column("doc", ratio=1)
    for item in items:
        workers = str(item.get("workers", ""))
        if item.get("missing_on"):
            workers += f" (missing on {', '.join(item['missing_on'])})"
        table.add_row(stacked(Text(str(item.get("name", "")), style="bold"),
                              str(item.get("queue", ""))),
                      arguments_summary(item.get("schema")), limits_summary(item.get("limits")),
                      workers, item.get("doc") or "")
    if not items:
        table.caption = "no live worker has announced a task"
    return table


def dead_letters_table(doc: dict[str, Any]) -> Table:
    """``GET /dead-letters``: one row per dead letter; the id whole (``replay`` takes it)."""
    items = doc.get("items") or []
    table = Table(title="Dead letters", title_justify="left")
    # The id whole on one line, so it can be copied; the other columns give way.
    table.add_column("task_id", no_wrap=True)
    table.add_column("task / queue")
    table.add_column("reason / at (UTC)")
    table.add_column("error / arguments", overflow="fold")
    for item in items:
        table.add_row(str(item.get("task_id", "")),
                      stacked(Text(str(item.get("name", "")), style="bold"),
                              str(item.get("queue", ""))),
                      stacked(Text(str(item.get("reason", "")), style="red"),
                              short_time(item.get("dead_lettered_at"))),
                      stacked(error_summary(item.get("error")), _call_arguments(item)))
    if not items:
        table.caption = "no dead letters"
    elif doc.get("next"):
        table.caption = "more on the next page: --all lists every page"
    return table


def short_time(value: Any) -> str:
    """``2026-11-25T09:14:48.066Z`` as ``2026-11-25 09:14:48`` (the header says UTC)."""
    text = str(value or "")
    if len(text) >= 19 and text[10] == "T":
        return f"{text[:10]} {text[11:19]}"
    return text


def _call_arguments(item: dict[str, Any]) -> str:
    if item.get("undecodable"):
        return f"undecodable: {item['undecodable']}"
    args, kwargs = item.get("args"), item.get("kwargs")
    parts = [short_json(a, 30) for a in args or []]
    parts += [f"{k}={short_json(v, 30)}" for k, v in (kwargs or {}).items()]
    return truncated(f"({', '.join(parts)})")


TASK_FIELDS = ("task_id", "name", "state", "retries", "submitted_at", "started_at",
               "finished_at", "progress", "result", "reason", "error")


def task_table(doc: dict[str, Any]) -> Table:
    """``GET /tasks/{id}``: one row per field, in the order a person reads them."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name in (*TASK_FIELDS, *[k for k in doc if k not in TASK_FIELDS]):
        if name not in doc:
            continue
        value = doc[name]
        if name == "state":
            table.add_row(name, state_text(str(value)))
        elif name == "error":
            table.add_row(name, error_summary(value))
        elif name in ("result", "progress"):
            table.add_row(name, json.dumps(value, ensure_ascii=False))
        else:
            table.add_row(name, str(value))
    return table


MIB = 1024 * 1024


def queues_table(doc: dict[str, Any]) -> Table:
    """``GET /queues``: one row per task queue, its dead-letter queue beside it."""
    queues = doc.get("queues") or []
    table = Table(title="Task queues", title_justify="left")
    table.add_column("queue", no_wrap=True)
    table.add_column("ready", justify="right")
    table.add_column("unacked", justify="right")
    table.add_column("consumers", justify="right")
    table.add_column("dead-letter queue", no_wrap=True)
    table.add_column("dead letters", justify="right")
    for queue in queues:
        dead_letter = queue.get("dead_letter") or {}
        ready, consumers = queue.get("ready"), queue.get("consumers")
        # A backlog nobody consumes is what an operator looks for first.
        stranded = isinstance(ready, int) and ready > 0 and consumers == 0
        dead = dead_letter.get("ready")
        table.add_row(Text(str(queue.get("name", "")), style="bold"), _figure(ready),
                      _figure(queue.get("unacked")),
                      Text(_figure(consumers), style="bold red" if stranded else ""),
                      str(dead_letter.get("name", "")),
                      Text(_figure(dead), style="red" if isinstance(dead, int) and dead else ""))
    if not queues:
        table.caption = "no task queue"
    return table


def workers_table(doc: dict[str, Any], now: datetime) -> Table:
    """``GET /workers``: one row per live worker; ``now`` (aware) dates ``last_seen``."""
    workers = doc.get("workers") or []
    table = Table(title="Live workers", title_justify="left")
    table.add_column("hostname", no_wrap=True)
    table.add_column("queues")
    table.add_column("concurrency", justify="right")
    table.add_column("processes", justify="right")
    table.add_column("memory", justify="right", no_wrap=True)
    table.add_column("last seen", justify="right", no_wrap=True)
    for worker in workers:
        queues = worker.get("queues")
        table.add_row(Text(str(worker.get("hostname", "")), style="bold"),
                      ", ".join(map(str, queues)) if isinstance(queues, list) else "",
                      _figure(worker.get("concurrency")), _figure(worker.get("processes")),
                      mebibytes(worker.get("rss_bytes")), age(worker.get("last_seen"), now))
    if not workers:
        table.caption = "no live worker"
    return table


def _figure(value: Any) -> str:
    """A figure as the gateway sent it; ``-`` for null (a worker of an older release)."""
    return "-" if value is None else str(value)


def mebibytes(rss_bytes: Any) -> str:
    """``rss_bytes`` as ``123.4 MiB``; ``-`` when the worker did not say."""
    if not isinstance(rss_bytes, int | float) or isinstance(rss_bytes, bool):
        return "-"
    return f"{rss_bytes / MIB:,.1f} MiB"


def age(last_seen: Any, now: datetime) -> str:
    """How long before ``now`` an RFC 3339 time was: ``3 s ago``, ``4 min ago``, ``2 h ago``,
    ``5 d ago``; the text as sent when it is not a time.

    ``last_seen`` is by the worker's clock: one ahead of this machine's shows
    ``clock 5 s ahead`` rather than a negative age (under a second of it: ``0 s ago``).
    """
    try:
        seen = datetime.fromisoformat(str(last_seen))
    except ValueError:
        return "-" if last_seen is None else str(last_seen)
    if seen.tzinfo is None:  # API.md: UTC; a naive time is read as UTC too
        seen = seen.replace(tzinfo=UTC)
    seconds = (now - seen).total_seconds()
    if seconds <= -1:
        return f"clock {_duration(-seconds)} ahead"
    return f"{_duration(max(seconds, 0.0))} ago"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    if whole < 86400:
        return f"{whole // 3600} h"
    return f"{whole // 86400} d"
