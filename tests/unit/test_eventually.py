"""The suite's one polling helper: it returns what held and, failing, says what it waited for."""

from __future__ import annotations

import itertools

import pytest

from tests.support.eventually import eventually, eventually_sync


async def test_eventually_returns_the_first_value_that_holds() -> None:
    counter = itertools.count()

    async def next_value() -> int:
        return next(counter)

    assert await eventually(next_value, 10, "three", until=lambda n: n == 3, interval=0) == 3


async def test_a_timeout_names_what_was_awaited_and_the_last_value_seen() -> None:
    async def never() -> str:  # truthy, but not what the test waits for
        return "still no"

    with pytest.raises(TimeoutError, match=r"the door open: not within 0s; last seen: 'still no'"):
        await eventually(never, 0, "the door open", until=lambda answer: answer == "yes")


async def test_an_ignored_error_is_one_more_failed_check_and_any_other_ends_the_wait() -> None:
    answers: list[Exception | str] = [ConnectionError("not yet"), "ready"]

    async def flaky() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await eventually(flaky, 10, ignoring=(ConnectionError,), interval=0) == "ready"

    async def broken() -> str:
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        await eventually(broken, 10, ignoring=(ConnectionError,))


async def test_none_means_not_yet_whatever_until_says() -> None:
    values: list[int | None] = [None, 0]

    async def lookup() -> int | None:
        return values.pop(0)

    assert await eventually(lookup, 10, until=lambda value: True, interval=0) == 0


def test_the_sync_twin_describes_its_wait_from_the_state_at_timeout() -> None:
    log = ["started"]
    with pytest.raises(TimeoutError, match=r"ready after: \['started'\].*last seen: False"):
        eventually_sync(lambda: False, 0, lambda: f"ready after: {log}")
