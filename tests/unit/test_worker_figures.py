"""What a worker announces about itself (concurrency, processes, memory) and what
gateways make of it, without a broker: the figures travel as headers, an
announcement without them still decodes, and a gateway of the previous release
would still accept the body."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import celery
import psutil
import pytest

from broker.catalog import (
    FIGURE_HEADERS,
    AnnouncedTask,
    Announcement,
    Catalog,
    InvalidAnnouncement,
    TaskLimits,
    decode_announcement,
)
from broker.catalog_reader import CatalogReader
from broker.settings import load_settings
from broker.topology import build_topology
from gateway.workers_api import worker_item
from tests.support.eventually import eventually_sync
from workers import announce
from workers.announce import (
    Announcer,
    ProcessTree,
    build_announcement,
    pool_concurrency,
    process_tree,
)

VHOST = "unit"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# The fields of an announcement body as the previous release knows them: its
# decoder refuses any other (extra="forbid"), so a body with one more field
# would be dropped by every gateway and bridge not yet upgraded.
PREVIOUS_RELEASE_FIELDS = {"type", "version", "worker", "vhost", "started_at",
                           "announced_at", "ttl", "queues", "tasks", "withdrawn"}
NUMBER_X = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"],
            "additionalProperties": False, "x-cargo-positional": ["x"]}


def task(queue: str = "cargo", name: str = "acme.report") -> AnnouncedTask:
    return AnnouncedTask(name=name, queue=queue, schema=NUMBER_X,
                         limits=TaskLimits(memory_limit_mb=64, max_retries=0))


def announcement(worker: str = "w1@host", *, at: datetime = T0, ttl: float = 45,
                 queues: tuple[str, ...] = ("cargo",), tasks: tuple[AnnouncedTask, ...] = (),
                 **figures: Any) -> Announcement:
    return Announcement(worker=worker, vhost=VHOST, started_at=T0, announced_at=at, ttl=ttl,
                        queues=queues, tasks=tasks, **figures)


def test_the_figures_travel_as_headers_and_the_body_keeps_the_previous_releases_fields() -> None:
    sent = announcement(tasks=(task(),), concurrency=4, processes=5, rss_bytes=300_000_000)
    body = json.loads(sent.encode())
    assert set(body) <= PREVIOUS_RELEASE_FIELDS
    assert sent.headers() == {"x-cargo-concurrency": 4, "x-cargo-processes": 5,
                              "x-cargo-rss-bytes": 300_000_000}
    assert decode_announcement(sent.encode(), VHOST, sent.headers()) == sent


def test_an_announcement_without_figures_decodes_with_them_null() -> None:
    older = announcement(tasks=(task(),))
    assert older.headers() == {}
    for headers in (None, {}, {"x-stream-offset": 12}):
        decoded = decode_announcement(older.encode(), VHOST, headers)
        assert (decoded.concurrency, decoded.processes, decoded.rss_bytes) == (None, None, None)
        assert decoded == older


@pytest.mark.parametrize("value", ["2", 2.5, True, -1, 10**18, [2]],
                         ids=["text", "fraction", "boolean", "negative", "huge", "list"])
@pytest.mark.parametrize("header", sorted(FIGURE_HEADERS.values()))
def test_an_announcement_with_a_figure_that_is_no_count_is_refused(header: str,
                                                                   value: Any) -> None:
    with pytest.raises(InvalidAnnouncement) as refused:
        decode_announcement(announcement().encode(), VHOST, {header: value})
    assert refused.value.reason == "malformed"


def test_the_reader_applies_the_figures_of_the_message_headers() -> None:
    catalog = Catalog(VHOST)
    reader = CatalogReader(catalog)
    now = datetime.now(UTC)
    sent = announcement(at=now, concurrency=2, processes=3, rss_bytes=123)
    reader.handle(sent.encode(), {**sent.headers(), "x-stream-offset": 7})
    (live,) = catalog.live_workers()
    assert (live.concurrency, live.processes, live.rss_bytes) == (2, 3, 123)
    assert reader.rejected == 0


def test_a_worker_item_shows_the_announced_figures_or_null() -> None:
    assert worker_item(announcement(concurrency=2, processes=3, rss_bytes=123)) == {
        "hostname": "w1@host", "queues": ["cargo"], "concurrency": 2, "rss_bytes": 123,
        "processes": 3, "last_seen": "2026-01-01T12:00:00+00:00"}
    older = worker_item(announcement(queues=()))
    assert (older["queues"], older["concurrency"], older["rss_bytes"], older["processes"]) == (
        [], None, None, None)


def test_the_catalogs_queues_are_those_of_live_workers_and_their_tasks_valid_names_only() -> None:
    catalog = Catalog(VHOST)
    catalog.apply(announcement("a", queues=("cargo", "reports")))
    # A test announcer consumes nothing but routes a task to a queue of its own.
    catalog.apply(announcement("b", queues=(), tasks=(task("images"),)))
    catalog.apply(announcement("c", queues=("cargo.events.stream", "x.XQ", "")))
    catalog.apply(announcement("d", queues=("expired",), ttl=10))
    catalog.apply(announcement("e", queues=("gone",)))
    catalog.apply(announcement("e", queues=(), at=T0 + timedelta(seconds=1), withdrawn=True))
    assert catalog.queues(T0 + timedelta(seconds=20)) == ["cargo", "images", "reports"]


def test_build_announcement_carries_concurrency_and_the_process_tree() -> None:
    settings = load_settings({"RABBITMQ_URL": "amqp://guest:guest@rabbit:5672/unit"})
    built = build_announcement(worker="w1@host", settings=settings, started_at=T0, tasks={},
                               consumed=["cargo"], concurrency=2,
                               tree=ProcessTree(processes=3, rss_bytes=999))
    assert built.headers() == {"x-cargo-concurrency": 2, "x-cargo-processes": 3,
                               "x-cargo-rss-bytes": 999}


def test_an_announcement_goes_out_without_figures_when_they_cannot_be_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings({"RABBITMQ_URL": "amqp://guest:guest@rabbit:5672/unit"})
    announcer = Announcer(celery.Celery(set_as_current=False), settings,
                          build_topology(settings), {})
    announcer.worker, announcer.consumed = "w1@host", ("cargo",)

    def unreadable(pid: int | None = None) -> ProcessTree | None:
        raise RuntimeError("/proc is not what it used to be")

    monkeypatch.setattr(announce, "process_tree", unreadable)
    made = announcer.announcement()
    assert (made.worker, made.queues) == ("w1@host", ("cargo",))
    assert made.headers() == {}


class Pool:
    num_processes = 3


class Consumer:
    def __init__(self, pool: object) -> None:
        self.pool = pool


def test_pool_concurrency_reads_the_pools_current_size_and_none_without_a_pool() -> None:
    consumer = Consumer(Pool())
    read = pool_concurrency(consumer)
    assert read() == 3
    consumer.pool = None  # Celery stopping: no pool any more
    assert read() is None


@pytest.fixture
def parent_with_a_child() -> Iterator[psutil.Process]:
    """A real process that started a child of its own (as a pool's main process has)."""
    code = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
            "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        process = psutil.Process(parent.pid)
        # Without its child in time the tests below fail, saying what they miss.
        with contextlib.suppress(TimeoutError):
            eventually_sync(process.children, 30, "the parent's child", interval=0.05)
        yield process
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.wait(10)


def test_process_tree_counts_a_process_and_its_children_and_sums_their_memory(
        parent_with_a_child: psutil.Process) -> None:
    (child,) = parent_with_a_child.children()
    tree = process_tree(parent_with_a_child.pid)
    assert tree is not None
    assert tree.processes == 2
    # Two Python interpreters: each alone is far below their sum.
    biggest = max(parent_with_a_child.memory_info().rss, child.memory_info().rss)
    assert tree.rss_bytes > biggest


def test_process_tree_of_a_process_that_is_gone_is_none() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait(30)
    assert process_tree(done.pid) is None
