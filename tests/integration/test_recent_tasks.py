"""GET /tasks: the recent tasks a gateway replica knows, most recently updated first.

The module's vhost gets a real worker and a short history before any test runs: a
task that succeeded, a long one that started, a second that succeeded, then the long
one revoked. Each test starts a gateway of its own afterwards, a replica that knows
these tasks only from reading the events stream at start, as any replica would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from broker.settings import Settings
from tests.support.gateway import Gateway, running_gateway
from tests.support.processes import start_worker
from tests.support.rabbit import private_vhost, run

pytestmark = pytest.mark.integration

TOKEN = "recent-tasks-token-for-tests"
# What the list adds to GET /tasks/{id}'s document.
LIST_ONLY = {"cursor", "updated_at"}


@dataclass(frozen=True)
class History:
    settings: Settings
    first: str    # calculate_distance(3, 4): succeeded first
    revoked: str  # sleep(600): started before `second` was submitted, revoked after it ended
    second: str   # calculate_distance(6, 8): succeeded second

    @property
    def newest_first(self) -> list[str]:
        return [self.revoked, self.second, self.first]


async def make_history(settings: Settings) -> tuple[str, str, str]:
    async with running_gateway(settings) as gw:
        first = await gw.submit("calculate_distance", args=[3, 4])
        await gw.wait_state(first, {"succeeded"})
        revoked = await gw.submit("sleep", args=[600])
        await gw.wait_state(revoked, {"started", "progress"})
        second = await gw.submit("calculate_distance", args=[6, 8])
        await gw.wait_state(second, {"succeeded"})
        async with gw.http.delete(f"{gw.url}/tasks/{revoked}") as resp:
            assert resp.status == 202, await resp.text()
        await gw.wait_state(revoked, {"revoked"})
    return first, revoked, second


@pytest.fixture(scope="module")
def history() -> Iterator[History]:
    with private_vhost("cargo-test-recent") as settings:
        worker = start_worker(settings, "recent-worker", concurrency=2)
        try:
            first, revoked, second = run(make_history(settings))
            yield History(settings, first, revoked, second)
        finally:
            worker.stop()


async def list_tasks(gw: Gateway, query: str = "", **headers: str) -> tuple[int, Any]:
    async with gw.http.get(f"{gw.url}/tasks{query}", headers=headers) as resp:
        return resp.status, await resp.json()


async def listed_ids(gw: Gateway, query: str = "") -> list[str]:
    status, doc = await list_tasks(gw, query)
    assert status == 200, doc
    return [item["task_id"] for item in doc["items"]]


async def test_get_tasks_lists_the_tasks_most_recently_updated_first_as_get_task_shows_them(
    history: History,
) -> None:
    async with running_gateway(history.settings) as gw:
        status, doc = await list_tasks(gw)
        assert status == 200, doc
        items = doc["items"]
        # The revoked task was submitted before `second` but changed last.
        assert [item["task_id"] for item in items] == history.newest_first
        assert [item["state"] for item in items] == ["revoked", "succeeded", "succeeded"]
        assert [item["name"] for item in items] == ["sleep", "calculate_distance",
                                                    "calculate_distance"]
        assert [item.get("result") for item in items[1:]] == [10.0, 5.0]
        for item in items:
            status, single = await gw.task(item["task_id"])
            assert status == 200
            assert {k: v for k, v in item.items() if k not in LIST_ONLY} == single
            assert item["updated_at"] == item["finished_at"]
        # The latest event applied to each, in stream order: newest first.
        cursors = [int(item["cursor"]) for item in items]
        assert cursors == sorted(cursors, reverse=True)
        assert len(set(cursors)) == 3


async def test_get_tasks_filters_by_state_by_name_and_by_both(history: History) -> None:
    async with running_gateway(history.settings) as gw:
        assert await listed_ids(gw, "?state=succeeded") == [history.second, history.first]
        assert await listed_ids(gw, "?state=revoked") == [history.revoked]
        assert await listed_ids(gw, "?name=sleep") == [history.revoked]
        assert await listed_ids(gw, "?name=calculate_distance") == [history.second,
                                                                     history.first]
        assert await listed_ids(gw, "?state=succeeded&name=calculate_distance") == [
            history.second, history.first]
        assert await listed_ids(gw, "?state=succeeded&name=sleep") == []
        assert await listed_ids(gw, "?state=queued") == []
        assert await listed_ids(gw, "?name=no_such_task") == []
        # Empty filters filter nothing (as a form with nothing chosen sends them).
        assert await listed_ids(gw, "?state=&name=") == history.newest_first


async def test_get_tasks_returns_at_most_limit_tasks_the_most_recent_ones(
    history: History,
) -> None:
    async with running_gateway(history.settings) as gw:
        assert await listed_ids(gw, "?limit=1") == [history.revoked]
        assert await listed_ids(gw, "?limit=2") == [history.revoked, history.second]
        assert await listed_ids(gw, "?limit=1000") == history.newest_first
        assert await listed_ids(gw, "?limit=1&state=succeeded") == [history.second]


async def test_get_tasks_lists_no_more_than_the_replicas_task_store_holds(
    history: History,
) -> None:
    small = history.settings.model_copy(update={"task_store_size": 2})
    async with running_gateway(small) as gw:
        # The least recently updated task was forgotten by this replica.
        assert await listed_ids(gw, "?limit=1000") == [history.revoked, history.second]
        status, _doc = await gw.task(history.first)
        assert status == 404


@pytest.fixture
def workerless_vhost() -> Iterator[Settings]:
    """A vhost without a worker: the test announcer offers the built-in tasks
    (``running_gateway``), and nothing runs them."""
    with private_vhost("cargo-test-recent-queued") as settings:
        yield settings


async def test_a_task_this_replica_accepted_is_listed_first_as_queued_before_a_worker_runs_it(
    workerless_vhost: Settings,
) -> None:
    async with running_gateway(workerless_vhost) as gw:
        earlier = await gw.submit("calculate_distance", args=[1, 1])
        latest = await gw.submit("sleep", args=[1])
        status, doc = await list_tasks(gw)
    assert status == 200, doc
    assert [item["task_id"] for item in doc["items"]] == [latest, earlier]
    assert [item["state"] for item in doc["items"]] == ["queued", "queued"]
    assert doc["items"][0]["updated_at"] == doc["items"][0]["submitted_at"]


BAD_QUERIES = [
    ("?limit=0", ["limit"]),
    ("?limit=1001", ["limit"]),
    ("?limit=-1", ["limit"]),
    ("?limit=ten", ["limit"]),
    ("?limit=", ["limit"]),
    ("?limit=2.5", ["limit"]),
    ("?limit=%205", ["limit"]),  # " 5"
    ("?limit=1_0", ["limit"]),
    ("?limit=99999999999999999999", ["limit"]),
    ("?state=done", ["state"]),
    ("?state=SUCCEEDED", ["state"]),
    ("?limit=1&limit=2", ["limit"]),
    ("?name=a&name=b", ["name"]),
    ("?limit=0&state=done", ["limit", "state"]),
]


async def test_a_bad_limit_or_state_is_422_naming_each_bad_parameter(
    history: History,
) -> None:
    async with running_gateway(history.settings) as gw:
        for query, bad in BAD_QUERIES:
            status, doc = await list_tasks(gw, query)
            assert status == 422, (query, doc)
            error = doc["error"]
            assert error["code"] == "invalid_arguments", (query, doc)
            assert [d["loc"] for d in error["details"]] == [["query", p] for p in bad], query
            for parameter in bad:
                assert f"{parameter} must be" in error["message"], (query, doc)
        status, doc = await list_tasks(gw, "?limit=0")
        assert doc["error"]["message"] == "limit must be an integer from 1 to 1000, not '0'"


async def test_get_tasks_needs_the_token_when_auth_is_on(history: History) -> None:
    settings = history.settings.model_copy(update={"auth_token": TOKEN})
    async with running_gateway(settings) as gw:
        status, doc = await list_tasks(gw)
        assert status == 401
        assert doc["error"]["code"] == "unauthorized"
        status, doc = await list_tasks(gw, Authorization="Bearer not-the-token")
        assert status == 401
        status, doc = await list_tasks(gw, Authorization=f"Bearer {TOKEN}")
        assert status == 200
        assert [item["task_id"] for item in doc["items"]] == history.newest_first
