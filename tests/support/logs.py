"""Reading a Cargo process's log (``broker.logs``) in tests: which events it wrote."""

from __future__ import annotations

import json
from typing import Any


def log_lines(output: str) -> list[dict[str, Any]]:
    """The JSON objects among ``output``'s lines (``CARGO_LOG_FORMAT=json``), in order."""
    lines = []
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            lines.append(entry)
    return lines


def logged(output: str, event: str, **fields: Any) -> bool:
    """Whether ``output`` holds a line of ``event`` with these field values, in either
    format: a JSON object, or a console line (``event`` then ``key=value`` words)."""
    for entry in log_lines(output):
        if entry.get("event") == event and all(entry.get(k) == v for k, v in fields.items()):
            return True
    wanted = {f"{key}={value}" for key, value in fields.items()}
    for line in output.splitlines():
        words = line.split()
        if event in words and wanted <= set(words):
            return True
    return False
