"""Writing and reading a process's heartbeat file for its liveness and readiness probes.

The worker and the bridge each write a small JSON file on a timer from the
loop that does their work; a probe (``cargoctl worker|bridge health``) reads it
back. Writing, reading and the age check are the same for both; what the file
says differs and stays with each process. Standard
library only, so the Kubernetes probe that runs it stays cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def write_heartbeat_file(path: Path, doc: Mapping[str, Any]) -> None:
    """Write ``doc`` as JSON to ``path`` atomically (a temporary file renamed over it),
    so a probe never reads half a file. Raises ``OSError``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


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
