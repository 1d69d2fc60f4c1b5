"""``cargoctl bridge``: the Dramatiq bridge process, until SIGTERM or SIGINT.

One supervised connection (:class:`~broker.connection.BrokerConnection`:
connects, declares Cargo's topology, runs the catalog reader's hook (the bridge
knows the tasks live workers announced, ``broker.catalog``, and imports no task
code), then the bridge's hook that declares the Dramatiq queues and starts
consuming once the catalog is replayed, and reconnects by itself whenever the
broker goes away), a :class:`~broker.publisher.Publisher` on its confirm
channel, the ``queued`` announcer, the heartbeat writer and the metrics server,
composed in one ``AsyncExitStack`` that tears them down in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog

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

log = structlog.get_logger(__name__)


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

    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    # Entered in this order, left in the reverse: the heartbeat file goes first,
    # then the bridge stops consuming and lets the messages in hand finish, the
    # announcer drains its ``queued`` events, the connection closes, and the
    # metrics are served to the end.
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(metrics.serving(settings.bridge_metrics_port))
        await stack.enter_async_context(connection)
        stack.push_async_callback(announcer.close, settings.publish_timeout)
        stack.push_async_callback(bridge.stop, settings.publish_timeout + 1)
        await stack.enter_async_context(HeartbeatWriter(
            settings.bridge_heartbeat_file, settings.bridge_heartbeat_interval, state))
        stack.callback(log.info, "bridge.stopping")  # however the wait below ends
        log.info("bridge.started", queues=[q.name for q in queues])
        await stop.wait()


def run_bridge(settings: BridgeSettings) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
