"""Giving the memory of closed WebSocket connections back to the operating system.

Why this exists, and why through ``ctypes``: each WebSocket connection costs the
gateway about 20 KB. When thousands of clients leave, their objects are freed
(none stays behind: counted with ``gc.get_objects()``), but the allocators keep
the memory: glibc's heap shrinks only from its top, which a few blocks still in
use (the task store, the event ring) pin, and CPython's small-object arenas go
back only once empty (issue 13: RSS 63 → 285 MB with 10,000 clients, not given
back after they closed). glibc's ``malloc_trim(0)`` returns every free page
inside its heaps to the kernel; no Python API reaches it, hence ``ctypes``, here
only. (What stays in CPython's arenas needs ``PYTHONMALLOC=malloc``, measured in
``bench/RESULTS.md``.)

:class:`MemoryReleaser` does it once the number of open connections has fallen
by ``min_drop`` from its peak since the last release: first a full garbage
collection (a closed connection's objects refer to each other, so only the cycle
collector frees them, and its oldest generation runs rarely), then
``malloc_trim`` off the event loop; it watches from ``async with`` to its end.
On a C library without ``malloc_trim`` (musl, macOS) only the collection is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
from collections.abc import Callable
from types import TracebackType
from typing import Self

import structlog

log = structlog.get_logger(__name__)

CHECK_SECONDS = 5.0
MIN_DROP = 1_000


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    with contextlib.suppress(OSError, AttributeError):
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
        return trim
    return None


def release_free_heap() -> bool:
    """Give the C heap's free pages back to the kernel; False where glibc's
    ``malloc_trim`` is not available (or found nothing to give back)."""
    trim = _malloc_trim()
    return trim is not None and bool(trim(0))


class MemoryReleaser:
    """Releases freed heap memory after many connections closed (see the module)."""

    def __init__(self, connections: Callable[[], int], *,
                 release: Callable[[], bool] = release_free_heap,
                 interval: float = CHECK_SECONDS, min_drop: int = MIN_DROP) -> None:
        self._connections = connections
        self._release = release
        self._interval = interval
        self._min_drop = min_drop
        self._peak = 0
        self._task: asyncio.Task[None] | None = None

    def due(self) -> bool:
        """Whether enough connections closed since the last release; tracks the peak."""
        current = self._connections()
        self._peak = max(self._peak, current)
        if self._peak - current < self._min_drop:
            return False
        self._peak = current
        return True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._interval)
            if self.due():
                collected = gc.collect()
                # malloc_trim walks the whole heap: in a thread, not on the loop.
                released = await loop.run_in_executor(None, self._release)
                log.info("gateway.memory_released", collected=collected, released=released,
                         connections=self._connections())

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="memory-releaser")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
