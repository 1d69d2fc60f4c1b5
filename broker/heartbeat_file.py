"""Reading a process's heartbeat file for its liveness and readiness probes.

The worker and the bridge each write a small JSON file on a timer from the
loop that does their work; a probe (``cargoctl worker|bridge health``) reads it
back. Reading and the age check are the same for both; what a fresh file must
also say differs and stays with each process's ``health`` module. Standard
library only, so the Kubernetes probe that runs it stays cheap.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def read_heartbeat(path: str, process: str,
                   fields: Mapping[str, Callable[[Any], Any]]) -> dict[str, Any] | str:
    """The file's ``fields``, each converted, or a one-line reason it cannot be read."""
    try:
        doc: Any = json.loads(Path(path).read_text())
        return {name: convert(doc[name]) for name, convert in fields.items()}
    except FileNotFoundError:
        return f"no heartbeat file at {path} ({process} not started, or stopped)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable heartbeat file {path}: {type(exc).__name__}: {exc}"


def staleness(written_at: float, now: float, max_age: float, meaning: str) -> str | None:
    """None when the file was written within ``max_age`` seconds, else why not, and what
    that means for this process."""
    if now - written_at > max_age:
        return f"heartbeat not written for {now - written_at:.1f}s (max {max_age:g}s): {meaning}"
    return None
