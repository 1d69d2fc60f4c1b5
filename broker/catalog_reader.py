"""Reads the workers' announcements from ``cargo.catalog.stream`` into a live :class:`Catalog`.

Gateways and the bridge use it the same way: hooked on their
:class:`~broker.connection.BrokerConnection` (``on_connect``), on a channel of
its own. The first connect starts ``CATALOG_REPLAY_SECONDS`` back (the longest
an announcement holds), so a process started after the workers knows every
live one at once; a reconnect resumes right after the last offset read; a lost
vhost (a new, empty stream) starts over.

"Caught up" works as in ``gateway.events_reader``: once consuming, the reader
publishes a small marker to the catalog exchange and is caught up when it reads
that marker back, so everything announced before it has been applied (readiness
waits for it; the bridge waits for it before it translates anything). Other
readers' markers are skipped without a word.

Announcements are untrusted: whatever a message holds, it is decoded with
:func:`broker.catalog.decode_announcement` and either applied or logged (once,
with its reason), counted in ``cargo_catalog_announcements_rejected_total
{reason}`` and skipped. Nothing in a message can stop the consumer or touch the
catalog unless it is a valid announcement for this vhost.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from prometheus_client import CollectorRegistry, Counter, Gauge

from broker.catalog import Catalog, InvalidAnnouncement, decode_announcement
from broker.topology import CATALOG_EXCHANGE, CATALOG_REPLAY_SECONDS, CATALOG_STREAM

log = structlog.get_logger(__name__)

MARKER_TYPE = "cargo.catalog.marker"
OFFSET_HEADER = "x-stream-offset"
# Announcements are few and small; a handful in flight is plenty.
PREFETCH = 50
# Reasons a rejected announcement is counted under (decode_announcement's, plus
# what no decoder foresaw): known up front so every series exists from the start.
REJECT_REASONS = ("malformed", "invalid_schema", "foreign_vhost", "too_large", "internal")


class CatalogMetrics:
    """``cargo_catalog_announcements_rejected_total{reason}`` and ``cargo_catalog_tasks``
    on the owner's registry (the gateway's or the bridge's)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.rejected = Counter(
            "cargo_catalog_announcements_rejected",
            "Catalog announcements read from the stream and dropped, by reason",
            ["reason"], registry=registry)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
        self.tasks = Gauge("cargo_catalog_tasks",
                           "Tasks some live worker offers, as this process knows them",
                           registry=registry)

    def bind(self, catalog: Catalog) -> None:
        self.tasks.set_function(lambda: float(len(catalog)))


def _is_marker(body: bytes) -> str | None:
    """The marker id when ``body`` is a reader's marker (small, so cheap to try)."""
    if len(body) > 200 or MARKER_TYPE.encode() not in body:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict) and doc.get("type") == MARKER_TYPE and isinstance(doc.get("id"), str):
        return str(doc["id"])
    return None


class CatalogReader:
    def __init__(self, catalog: Catalog, metrics: CatalogMetrics | None = None,
                 replay_seconds: float = CATALOG_REPLAY_SECONDS) -> None:
        self.catalog = catalog
        self._metrics = metrics
        if metrics is not None:
            metrics.bind(catalog)
        self._replay_seconds = replay_seconds
        self._marker = uuid.uuid4().hex
        self.caught_up = asyncio.Event()
        self.last_offset: int | None = None
        self.rejected = 0

    def _start_offset(self) -> Any:
        if self.last_offset is not None:
            return self.last_offset + 1
        return datetime.now(UTC) - timedelta(seconds=self._replay_seconds)

    def forget_position(self) -> None:
        """The vhost was lost: its stream is a new one (offsets from 0 again)."""
        self.last_offset = None
        self.caught_up.clear()

    async def on_connect(self, connection: AbstractConnection) -> None:
        """Broker-connection hook: (re)start consuming where this reader left off."""
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)  # streams need a prefetch limit
        queue = await channel.get_queue(CATALOG_STREAM, ensure=False)
        start = self._start_offset()
        await queue.consume(self._on_message, arguments={OFFSET_HEADER: start})
        log.info("catalog.consuming", start=str(start))
        if not self.caught_up.is_set():
            marker = json.dumps({"type": MARKER_TYPE, "id": self._marker}).encode()
            exchange = await channel.get_exchange(CATALOG_EXCHANGE, ensure=False)
            await exchange.publish(aio_pika.Message(marker, content_type="application/json"),
                                   routing_key="")

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            offset = (message.headers or {}).get(OFFSET_HEADER)
            if isinstance(offset, int):
                if self.last_offset is not None and offset <= self.last_offset:
                    return  # already read before a reconnect
                self.last_offset = offset
            self.handle(message.body, message.headers)
        except Exception as exc:  # a bug here must not end the consumer either
            self._reject("internal", f"{type(exc).__name__}: {exc}")
        finally:
            await message.ack()  # on a stream: credit for the next deliveries

    def handle(self, body: bytes, headers: Mapping[str, Any] | None = None) -> None:
        """Apply one stream message to the catalog, or count and skip it."""
        marker = _is_marker(body)
        if marker is not None:
            if marker == self._marker and not self.caught_up.is_set():
                log.info("catalog.caught_up", tasks=len(self.catalog))
                self.caught_up.set()
            return
        try:
            announcement = decode_announcement(body, self.catalog.vhost, headers)
        except InvalidAnnouncement as exc:
            self._reject(exc.reason, str(exc))
            return
        except Exception as exc:  # nothing a message holds may stop the reader
            self._reject("internal", f"{type(exc).__name__}: {exc}")
            return
        known = any(a.worker == announcement.worker for a in self.catalog.live_workers())
        applied = self.catalog.apply(announcement)
        # Workers re-announce every interval: only arrivals and departures are news.
        report = log.info if announcement.withdrawn or not known else log.debug
        report("catalog.announcement", worker=announcement.worker,
               tasks=len(announcement.tasks), withdrawn=announcement.withdrawn,
               applied=applied)

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected += 1
        if self._metrics is not None:
            self._metrics.rejected.labels(reason).inc()
        log.warning("catalog.announcement_rejected", reason=reason, error=detail[:500])
