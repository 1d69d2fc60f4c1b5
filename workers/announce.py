"""The worker announces its catalog on the broker (``broker.catalog``).

Gateways and the bridge import no task code: they learn each task's name,
queue, argument schema, doc and limits from these announcements, published to
``cargo.catalog`` (fanout, into the ``cargo.catalog.stream`` stream):

- when the consumer connects, and again at every reconnect (:class:`AnnounceStep`);
- every ``CARGO_CATALOG_INTERVAL`` seconds after, from a thread of the main
  process that runs inside ``with announcer:`` (an announcement holds for three
  intervals: a worker that died drops out of the gateways' catalog on its own);
- a withdrawal (``withdrawn: true``) when the worker stops gracefully (leaving
  that ``with``).

A worker announces only the tasks whose queue it consumes (a ``--queues cargo``
worker does not offer a task routed to ``reports``). Each announcement also
carries, as message headers (``broker.catalog``), the pool's concurrency and
the size of the worker's process tree at that moment: how many processes (the
main one, the pool's children and anything they started) and their resident
memory together (``GET /workers``). The thread publishes on a
connection of its own (kombu connections are not thread-safe) with publisher
confirms; a failed publish is logged and tried again at the next tick, never
raised into the worker.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import celery
import kombu
import psutil
import structlog
from celery import bootsteps

from broker.catalog import CONTENT_TYPE, AnnouncedTask, Announcement, TaskLimits
from broker.declare import kombu_queue
from broker.settings import WorkerSettings
from broker.topology import PERSISTENT, Topology
from workers.base import LoadedTask
from workers.rss import rss_of

log = structlog.get_logger(__name__)

# Each announcement's ttl, in catalog intervals: two missed announcements are tolerated.
TTL_INTERVALS = 3


def process_started_at() -> datetime:
    try:
        return datetime.fromtimestamp(psutil.Process(os.getpid()).create_time(), UTC)
    except (psutil.Error, OSError):
        return datetime.now(UTC)


@dataclass(frozen=True)
class ProcessTree:
    """A worker's processes at one moment: how many, and their resident memory together."""

    processes: int
    rss_bytes: int


def process_tree(pid: int | None = None) -> ProcessTree | None:
    """The tree of ``pid`` (default: this process) and all its descendants; None when
    not even its root can be read. A process that ends between being listed and
    being read (a pool child replaced just then) is left out."""
    try:
        root = psutil.Process(pid if pid is not None else os.getpid())
        members = [root, *root.children(recursive=True)]
    except (psutil.Error, OSError):
        return None
    sizes = [rss for rss in (rss_of(member.pid) for member in members) if rss is not None]
    if not sizes:
        return None
    return ProcessTree(processes=len(sizes), rss_bytes=sum(sizes))


def pool_concurrency(consumer: Any) -> Callable[[], int | None]:
    """Reads the pool's current size (autoscaling changes it) from Celery's consumer."""

    def concurrency() -> int | None:
        try:
            return int(consumer.pool.num_processes)
        except Exception:  # no pool (yet, or any more: stopping): not known
            return None

    return concurrency


def announced_task(task: LoadedTask) -> AnnouncedTask:
    policy = task.policy
    return AnnouncedTask(
        name=task.name, queue=task.queue, schema=task.schema, doc=task.doc,
        limits=TaskLimits(time_limit=policy.time_limit, soft_time_limit=policy.soft_time_limit,
                          memory_limit_mb=policy.memory_limit_mb,
                          max_retries=policy.max_retries))


def build_announcement(*, worker: str, settings: WorkerSettings, started_at: datetime,
                       tasks: Mapping[str, LoadedTask], consumed: Iterable[str],
                       withdrawn: bool = False, now: datetime | None = None,
                       concurrency: int | None = None,
                       tree: ProcessTree | None = None) -> Announcement:
    """The announcement of a worker consuming ``consumed``: the tasks it can run, and
    what it holds (``concurrency``, ``tree``; None: not known)."""
    queues = tuple(dict.fromkeys(consumed))
    return Announcement(
        worker=worker, vhost=settings.vhost, started_at=started_at,
        announced_at=now or datetime.now(UTC),
        ttl=TTL_INTERVALS * settings.catalog_interval, queues=queues,
        tasks=() if withdrawn else tuple(announced_task(t) for _, t in sorted(tasks.items())
                                         if t.queue in queues),
        withdrawn=withdrawn, concurrency=concurrency,
        processes=tree.processes if tree is not None else None,
        rss_bytes=tree.rss_bytes if tree is not None else None)


class Announcer:
    """Publishes one worker's announcements (see the module docstring)."""

    def __init__(self, app: celery.Celery, settings: WorkerSettings, topology: Topology,
                 tasks: Mapping[str, LoadedTask],
                 connect: Callable[[], kombu.Connection] | None = None) -> None:
        self._app = app
        self._settings = settings
        self._topology = topology
        self._tasks = dict(tasks)
        self._connect = connect or app.connection_for_write
        self.started_at = process_started_at()
        self.worker: str | None = None
        self.consumed: tuple[str, ...] = ()
        self._concurrency: Callable[[], int | None] = lambda: None
        self._connection: kombu.Connection | None = None
        self._declared = False
        self._fresh = True
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def connected(self, worker: str, consumed: Iterable[str],
                  concurrency: Callable[[], int | None] | None = None) -> None:
        """The consumer (re)connected: announce now, from the thread. ``concurrency``
        reads the pool's size at each announcement."""
        self.worker = worker
        self.consumed = tuple(consumed)
        if concurrency is not None:
            self._concurrency = concurrency
        self._fresh = True
        self._wake.set()

    def __enter__(self) -> Self:
        """Start the announcing thread (it announces once ``connected`` was called)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cargo-catalog", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Stop the thread; then withdraw this worker's catalog (graceful stop)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.worker is not None:
            self.publish(withdrawn=True)
        self._close()

    def announcement(self, withdrawn: bool = False) -> Announcement:
        """The announcement as of now; a withdrawal measures nothing (nobody shows it)."""
        assert self.worker is not None
        concurrency, tree = (None, None) if withdrawn else self._figures()
        return build_announcement(worker=self.worker, settings=self._settings,
                                  started_at=self.started_at, tasks=self._tasks,
                                  consumed=self.consumed, withdrawn=withdrawn,
                                  concurrency=concurrency, tree=tree)

    def _figures(self) -> tuple[int | None, ProcessTree | None]:
        """Concurrency and process tree, or None for what cannot be read: the figures
        only inform, the catalog is what submissions depend on, so nothing here may
        keep an announcement from going out."""
        try:
            return self._concurrency(), process_tree()
        except Exception:
            log.warning("catalog.figures_unreadable", exc_info=True)
            return None, None

    def publish(self, withdrawn: bool = False) -> bool:
        """Publish the current announcement; False (logged) when it failed."""
        if self.worker is None:
            return False
        announcement = self.announcement(withdrawn)
        body, headers = announcement.encode(), announcement.headers()
        with self._lock:
            # Twice: the first attempt may find the thread's connection dead (the
            # broker restarted or closed it, which is also why the consumer just
            # reconnected); the second is on a fresh connection.
            for attempt in (1, 2):
                try:
                    self._send(body, headers)
                    break
                except Exception as exc:
                    self._close()
                    if attempt == 2:
                        log.warning("catalog.announce_failed", worker=self.worker,
                                    error=f"{type(exc).__name__}: {exc}",
                                    retry_in=self._settings.catalog_interval)
                        return False
        # Info once per connection (and for a withdrawal); the periodic ones at debug.
        say = log.info if withdrawn or self._fresh else log.debug
        self._fresh = False
        say("catalog.withdrawn" if withdrawn else "catalog.announced", worker=self.worker,
            tasks=0 if withdrawn else sum(t.queue in self.consumed for t in self._tasks.values()),
            queues=list(self.consumed))
        return True

    def _send(self, body: bytes, headers: dict[str, int]) -> None:
        timeout = self._settings.publish_timeout
        connection = self._ensure_connection()
        producer = kombu.Producer(connection.default_channel)
        producer.publish(body, exchange=self._topology.catalog_exchange.name, routing_key="",
                         content_type=CONTENT_TYPE, content_encoding="utf-8", headers=headers,
                         delivery_mode=PERSISTENT, timeout=timeout, confirm_timeout=timeout)

    def _ensure_connection(self) -> kombu.Connection:
        if self._connection is None:
            connection = self._connect()
            connection.connect()
            self._connection = connection
            self._declared = False
        if not self._declared:
            # The consumer declares the whole topology too; declaring the catalog's
            # part here as well (identical arguments: a no-op) keeps an announcement
            # from vanishing into an exchange that is not yet bound to its stream.
            channel = self._connection.default_channel
            exchange = self._topology.catalog_exchange
            kombu.Exchange(exchange.name, type=exchange.type,
                           durable=exchange.durable)(channel).declare()
            kombu_queue(self._topology.catalog_stream, self._topology)(channel).declare()
            self._declared = True
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # a broken connection: nothing more to do with it
                log.debug("catalog.connection_close_failed", exc_info=True)
            self._connection = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._settings.catalog_interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            self.publish()


def consumed_queues(app: celery.Celery) -> tuple[str, ...]:
    """The task queues this worker consumes (``-Q``/``--queues``, else all of them)."""
    queues: Any = app.amqp.queues
    selected = queues.consume_from
    names = selected.keys() if selected else queues.keys()
    return tuple(str(name) for name in names)


class AnnounceStep(bootsteps.StartStopStep):
    """Announce the catalog each time the consumer has connected and consumes."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, parent: Any) -> None:
        announcer = getattr(parent.app, "cargo_announcer", None)
        if isinstance(announcer, Announcer):
            announcer.connected(parent.hostname, consumed_queues(parent.app),
                                pool_concurrency(parent))


def announcer_step(announcer: Announcer) -> type[bootsteps.StartStopStep]:
    class CatalogAnnouncements(bootsteps.StartStopStep):
        """Announces from the main process (after the pool forked: no child inherits
        the thread) and withdraws the worker's catalog when it stops gracefully."""

        requires = ("celery.worker.components:Pool",)

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self._stack = contextlib.ExitStack()

        def start(self, parent: Any) -> None:
            # Started before the consumer (Celery starts it last): the thread
            # announces once AnnounceStep says the consumer is connected.
            self._stack.enter_context(announcer)

        def stop(self, parent: Any) -> None:
            self._stack.close()

        terminate = stop

    return CatalogAnnouncements
