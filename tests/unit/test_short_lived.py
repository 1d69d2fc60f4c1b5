"""gateway.short_lived: one fetch per max_age, shared by every caller, failures included."""

from __future__ import annotations

import asyncio

import pytest

from gateway.short_lived import ShortLived


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Source:
    """Counts fetches; each answers the next value, or raises while ``failing``."""

    def __init__(self) -> None:
        self.fetches = 0
        self.failing = False
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def fetch(self) -> int:
        self.fetches += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise ConnectionError(f"down (fetch {self.fetches})")
        return self.fetches


async def test_callers_within_max_age_get_the_first_answer_without_a_second_fetch() -> None:
    clock, source = Clock(), Source()
    cache = ShortLived(source.fetch, max_age=1.0, clock=clock)
    assert await cache.get() == 1
    clock.now += 0.99
    assert await cache.get() == 1
    assert source.fetches == 1


async def test_a_caller_after_max_age_gets_a_new_answer() -> None:
    clock, source = Clock(), Source()
    cache = ShortLived(source.fetch, max_age=1.0, clock=clock)
    await cache.get()
    clock.now += 1.0
    assert await cache.get() == 2
    assert source.fetches == 2


async def test_callers_arriving_during_a_fetch_share_that_one_fetch() -> None:
    source = Source()
    source.gate = asyncio.Event()
    cache = ShortLived(source.fetch, max_age=1.0, clock=Clock())
    callers = [asyncio.create_task(cache.get()) for _ in range(50)]
    await asyncio.sleep(0)  # every caller is waiting now
    source.gate.set()
    assert await asyncio.gather(*callers) == [1] * 50
    assert source.fetches == 1


async def test_a_failure_is_kept_for_max_age_then_the_source_is_asked_again() -> None:
    clock, source = Clock(), Source()
    source.failing = True
    cache = ShortLived(source.fetch, max_age=1.0, clock=clock)
    for _ in range(3):
        with pytest.raises(ConnectionError, match="fetch 1"):
            await cache.get()
    assert source.fetches == 1
    source.failing = False
    clock.now += 1.0
    assert await cache.get() == 2


async def test_a_caller_that_goes_away_does_not_cancel_the_fetch_others_wait_for() -> None:
    source = Source()
    source.gate = asyncio.Event()
    cache = ShortLived(source.fetch, max_age=1.0, clock=Clock())
    leaving = asyncio.create_task(cache.get())
    staying = asyncio.create_task(cache.get())
    await asyncio.sleep(0)
    leaving.cancel()
    await asyncio.sleep(0)
    source.gate.set()
    assert await staying == 1
    assert leaving.cancelled()
    assert source.fetches == 1


async def test_leaving_the_cache_cancels_a_fetch_under_way_and_the_next_caller_fetches_anew(
) -> None:
    source = Source()
    source.gate = asyncio.Event()
    async with ShortLived(source.fetch, max_age=1.0, clock=Clock()) as cache:
        waiting = asyncio.create_task(cache.get())
        await source.started.wait()  # the fetch waits on the gate now
    with pytest.raises(asyncio.CancelledError):
        await waiting
    source.gate.set()
    assert await cache.get() == 2
