"""``cargoctl bridge``: the Dramatiq bridge process, until SIGTERM or SIGINT.

One supervised connection (:class:`~broker.connection.BrokerConnection`:
connects, declares Cargo's topology, runs the catalog reader's hook (the bridge
knows the tasks live workers announced, ``broker.catalog``, and imports no task
code), then the bridge's hook that declares the Dramatiq queues and starts
consuming once the catalog is replayed, and reconnects by itself whenever the
broker goes away), a :class:`~broker.publisher.Publisher` on its confirm
channel, the ``queued`` announcer, the heartbeat writer and the metrics server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from bridge.consumer import Bridge
from bridge.health import HeartbeatWriter
from bridge.metrics import BridgeMetrics
from bridge.queues import bridged_queues
from broker.announcer import Announcer
from broker.catalog import Catalog
from broker.catalog_reader import CatalogMetrics, CatalogReader
from broker.connection import BrokerConnection
from broker.publisher import Publisher
from broker.settings import BridgeSettings
from broker.topology import build_topology

log = logging.getLogger(__name__)


async def serve(settings: BridgeSettings, stop: asyncio.Event | None = None) -> None:
    """Run the bridge until ``stop`` is set (or SIGTERM/SIGINT when not given)."""
    queues = bridged_queues(settings)
    metrics = BridgeMetrics()
    connection = BrokerConnection(settings, build_topology(settings), name="cargo-bridge")
    publisher = Publisher(connection, settings.publish_timeout)
    announcer = Announcer(publisher)
    catalog = CatalogReader(Catalog(settings.vhost), CatalogMetrics(metrics.registry))
    # The reader's hook first: the bridge's waits for the catalog replay before consuming.
    connection.on_connect(catalog.on_connect)
    connection.on_vhost_lost(catalog.forget_position)
    bridge = Bridge(settings, connection, publisher, announcer, metrics, queues, catalog)
    connection.on_connect(bridge.on_connect)

    def state() -> tuple[bool, list[str]]:
        consuming, names = bridge.state()
        metrics.connected.set(1 if consuming else 0)
        return consuming, names

    heartbeat = HeartbeatWriter(settings.bridge_heartbeat_file,
                                settings.bridge_heartbeat_interval, state)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    metrics.serve(settings.bridge_metrics_port)
    await connection.start()
    heartbeat.start()
    log.info("Dramatiq bridge started for %s", ", ".join(q.name for q in queues))
    try:
        await stop.wait()
    finally:
        log.info("Dramatiq bridge stopping")
        await heartbeat.stop()
        await bridge.stop(timeout=settings.publish_timeout + 1)
        await announcer.close(timeout=settings.publish_timeout)
        await connection.stop()
        metrics.stop()


def run_bridge(settings: BridgeSettings) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
