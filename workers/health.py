"""Reading the worker's heartbeat file: ``cargoctl worker health --liveness|--readiness``.

Kept free of Celery imports so the Kubernetes probe that runs it stays cheap.

- **liveness** fails when the file is missing, when its writer thread stopped
  writing (the main process is gone or frozen), or when the worker is connected
  but its consumer loop has not ticked for ``max_age`` seconds (stuck). A
  worker that lost the broker stays live: restarting it would not help.
- **readiness** additionally fails while the consumer is not connected.
"""

from __future__ import annotations

import time

from broker.heartbeat_file import read_heartbeat, staleness

FIELDS = {"written_at": float, "loop_at": float, "connected": bool}


def heartbeat_problem(path: str, max_age: float, *, readiness: bool,
                      now: float | None = None) -> str | None:
    """None when healthy, else a one-line reason."""
    now = time.time() if now is None else now
    doc = read_heartbeat(path, "worker", FIELDS)
    if isinstance(doc, str):
        return doc
    loop_at, connected = doc["loop_at"], doc["connected"]
    stale = staleness(doc["written_at"], now, max_age,
                      "the worker's main process is gone or frozen")
    if stale is not None:
        return stale
    if connected and now - loop_at > max_age:
        return (f"consumer loop has not run for {now - loop_at:.1f}s (max {max_age:g}s): "
                "the consumer is stuck")
    if readiness and not connected:
        return "the consumer is not connected to the broker"
    return None
