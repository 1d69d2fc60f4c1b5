"""A value fetched at most once per ``max_age``, however many ask for it at once.

The console polls ``GET /queues`` every 2 s from every open tab, and every
gateway replica serves those tabs: without this, each poll would be a request
to the RabbitMQ management API, whose queue listing is among its most costly.
With it, one replica asks at most once per ``max_age``: callers within that
time get the last outcome, and callers that arrive while a fetch is under way
wait for that same fetch. A failure is an outcome too (kept as long), so an
unreachable management API is not asked again by every tab either. Leaving
``async with`` cancels a fetch under way (the resource it uses is about to close).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Generic, Self, TypeVar, cast

from broker.tasks import cancelled

T = TypeVar("T")


class ShortLived(Generic[T]):
    def __init__(self, fetch: Callable[[], Awaitable[T]], max_age: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._max_age = max_age
        self._clock = clock
        self._value: T | None = None
        self._error: Exception | None = None
        self._fetched_at: float | None = None
        self._fetching: asyncio.Task[None] | None = None

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at < self._max_age

    async def get(self) -> T:
        """The last outcome while fresh, else a new one; raises what the fetch raised."""
        if not self._fresh():
            if self._fetching is None:
                self._fetching = asyncio.create_task(self._refresh())
            # Shielded: a caller that goes away (a closed tab) does not cancel the
            # fetch the other callers wait for.
            await asyncio.shield(self._fetching)
        if self._error is not None:
            raise self._error
        return cast(T, self._value)  # set together with _fetched_at

    async def _refresh(self) -> None:
        """Fetch and keep the outcome; raises nothing but its own cancellation."""
        try:
            try:
                value = await self._fetch()
            except Exception as exc:
                self._value, self._error = None, exc
            else:
                self._value, self._error = value, None
            self._fetched_at = self._clock()
        finally:
            if self._fetching is asyncio.current_task():
                self._fetching = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        fetching, self._fetching = self._fetching, None
        await cancelled(fetching)
