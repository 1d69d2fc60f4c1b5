"""Waiting, bounded, for something a test expects to become true.

Every test that polls (a queue's depth, a process's readiness, a page's state)
goes through ``eventually`` (async) or ``eventually_sync`` (for code that runs
off the event loop), so that a timeout always says what was awaited and the
last value seen. The pause between checks only spaces the polls; no test
asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

# How long to rest between two checks: short enough not to slow a test down,
# long enough not to hammer the broker's management API on a shared machine.
INTERVAL = 0.2


def _truthy(value: Any) -> bool:
    return bool(value)


class _Tries:
    """The bookkeeping both twins share: the deadline, the last value, the message."""

    def __init__(self, timeout: float, what: str | Callable[[], str],
                 ignoring: tuple[type[BaseException], ...]) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.what = what
        self.ignoring = ignoring
        self.last: Any = "nothing yet"

    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def failure(self) -> TimeoutError:
        what = self.what() if callable(self.what) else self.what
        return TimeoutError(f"{what}: not within {self.timeout}s; last seen: {self.last!r}")


async def eventually(condition: Callable[[], Awaitable[T | None]], timeout: float = 60,
                     what: str | Callable[[], str] = "condition", *,
                     until: Callable[[T], bool] = _truthy,
                     ignoring: tuple[type[BaseException], ...] = (),
                     interval: float = INTERVAL) -> T:
    """Await ``condition()`` until ``until(value)`` holds and return that value.

    ``None`` means "not yet" whatever ``until`` says, so a lookup that returns
    the thing or ``None`` needs no ``until``.

    An exception of a type in ``ignoring`` counts as one more failed check (and
    is the last value seen); any other exception ends the wait at once. On
    timeout a ``TimeoutError`` names ``what`` (a string, or a callable for a
    description built from the test's state) and the last value seen.
    """
    tries = _Tries(timeout, what, ignoring)
    while True:
        try:
            value = await condition()
        except ignoring as exc:
            tries.last = exc
        else:
            if value is not None and until(value):
                return value
            tries.last = value
        if tries.expired():
            raise tries.failure()
        await asyncio.sleep(interval)


def eventually_sync(condition: Callable[[], T | None], timeout: float = 60,
                    what: str | Callable[[], str] = "condition", *,
                    until: Callable[[T], bool] = _truthy,
                    ignoring: tuple[type[BaseException], ...] = (),
                    interval: float = INTERVAL) -> T:
    """``eventually`` for code off the event loop (fixtures that start processes)."""
    tries = _Tries(timeout, what, ignoring)
    while True:
        try:
            value = condition()
        except ignoring as exc:
            tries.last = exc
        else:
            if value is not None and until(value):
                return value
            tries.last = value
        if tries.expired():
            raise tries.failure()
        time.sleep(interval)
