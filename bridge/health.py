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
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog

from broker.heartbeat_file import read_heartbeat, staleness, write_heartbeat_file
from broker.tasks import cancelled

log = structlog.get_logger(__name__)

FIELDS = {"written_at": float, "connected": bool}


def write_heartbeat(path: Path, connected: bool, queues: list[str],
                    now: float | None = None) -> None:
    doc = {"written_at": time.time() if now is None else now, "connected": connected,
           "queues": queues, "pid": os.getpid()}
    write_heartbeat_file(path, doc)


def heartbeat_problem(path: str, max_age: float, *, readiness: bool,
                      now: float | None = None) -> str | None:
    """None when healthy, else a one-line reason."""
    now = time.time() if now is None else now
    doc = read_heartbeat(path, "bridge", FIELDS)
    if isinstance(doc, str):
        return doc
    stale = staleness(doc["written_at"], now, max_age,
                      "the bridge process is gone or its event loop is blocked")
    if stale is not None:
        return stale
    if readiness and not doc["connected"]:
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
        await cancelled(task)
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()
