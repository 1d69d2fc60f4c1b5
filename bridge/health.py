"""The bridge's heartbeat file and ``cargoctl bridge health --liveness|--readiness``.

The bridge's event loop writes ``CARGO_BRIDGE_HEARTBEAT_FILE`` every
``CARGO_BRIDGE_HEARTBEAT_INTERVAL`` seconds (atomically: a temporary file
renamed over it) with the time and whether it is connected and consuming every
bridged queue. The writer runs *in* the loop that consumes, so a blocked or
dead loop stops writing. It writes from ``async with`` to its end, then
removes the file.

- **liveness** fails when the file is missing or older than
  ``CARGO_BRIDGE_HEARTBEAT_MAX_AGE`` (the process is gone or frozen). A bridge
  that lost the broker stays live: it reconnects by itself.
- **readiness** additionally fails while it is not connected and consuming.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import structlog

log = structlog.get_logger(__name__)


def write_heartbeat(path: Path, connected: bool, queues: list[str],
                    now: float | None = None) -> None:
    doc = {"written_at": time.time() if now is None else now, "connected": connected,
           "queues": queues, "pid": os.getpid()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


def heartbeat_problem(path: str, max_age: float, *, readiness: bool,
                      now: float | None = None) -> str | None:
    """None when healthy, else a one-line reason."""
    now = time.time() if now is None else now
    try:
        doc: Any = json.loads(Path(path).read_text())
        written_at = float(doc["written_at"])
        connected = bool(doc["connected"])
    except FileNotFoundError:
        return f"no heartbeat file at {path} (bridge not started, or stopped)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable heartbeat file {path}: {type(exc).__name__}: {exc}"
    if now - written_at > max_age:
        return (f"heartbeat not written for {now - written_at:.1f}s (max {max_age:g}s): "
                "the bridge process is gone or its event loop is blocked")
    if readiness and not connected:
        return "the bridge is not connected to the broker and consuming its queues"
    return None


class HeartbeatWriter:
    """Writes the heartbeat from the bridge's event loop inside ``async with``."""

    def __init__(self, path: str, interval: float, state: Callable[[], tuple[bool, list[str]]]):
        self._path = Path(path) if path else None
        self._interval = interval
        self._state = state
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        if self._path is not None:
            self._task = asyncio.create_task(self._run(), name="bridge-heartbeat")
        return self

    async def _run(self) -> None:
        assert self._path is not None
        while True:
            try:
                write_heartbeat(self._path, *self._state())
            except OSError as exc:
                log.warning("bridge.heartbeat_unwritable", path=str(self._path),
                            error=str(exc))
            await asyncio.sleep(self._interval)

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()
