"""Reading the worker's heartbeat file: ``cargoctl worker health --liveness|--readiness``.

Kept free of Celery imports so the Kubernetes probe that runs it stays cheap.

- **liveness** fails when the file is missing, when its writer thread stopped
  writing (the main process is gone or frozen), or when the worker is connected
  but its consumer loop has not ticked for ``max_age`` seconds (stuck). A
  worker that lost the broker stays live: restarting it would not help.
- **readiness** additionally fails while the consumer is not connected.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def heartbeat_problem(path: str, max_age: float, *, readiness: bool,
                      now: float | None = None) -> str | None:
    """None when healthy, else a one-line reason."""
    now = time.time() if now is None else now
    try:
        doc: Any = json.loads(Path(path).read_text())
        written_at = float(doc["written_at"])
        loop_at = float(doc["loop_at"])
        connected = bool(doc["connected"])
    except FileNotFoundError:
        return f"no heartbeat file at {path} (worker not started, or stopped)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable heartbeat file {path}: {type(exc).__name__}: {exc}"
    if now - written_at > max_age:
        return (f"heartbeat not written for {now - written_at:.1f}s (max {max_age:g}s): "
                "the worker's main process is gone or frozen")
    if connected and now - loop_at > max_age:
        return (f"consumer loop has not run for {now - loop_at:.1f}s (max {max_age:g}s): "
                "the consumer is stuck")
    if readiness and not connected:
        return "the consumer is not connected to the broker"
    return None
