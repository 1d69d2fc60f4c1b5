"""``cargoctl bridge``: the Dramatiq bridge process, until SIGTERM or SIGINT.

One supervised connection (:class:`~broker.connection.BrokerConnection`:
connects, declares Cargo's topology, runs the bridge's hook that declares the
Dramatiq queues and starts consuming, and reconnects by itself whenever the
broker goes away), a :class:`~broker.publisher.Publisher` on its confirm
channel, the ``queued`` announcer, the heartbeat writer and the metrics server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterable

from bridge.consumer import Bridge
from bridge.health import HeartbeatWriter
from bridge.metrics import BridgeMetrics
from bridge.queues import bridged_queues
from broker.connection import BrokerConnection
from broker.publisher import Publisher
from broker.settings import Settings
from broker.topology import build_topology
from gateway.announcer import Announcer
from workers.catalog import TaskSpec, task_specs
from workers.policy import resolve_policy

log = logging.getLogger(__name__)


def task_time_limits(settings: Settings, specs: Iterable[TaskSpec]) -> dict[str, float]:
    """Each task's hard time limit as the workers resolve it (``workers.policy``)."""
    return {spec.name: resolve_policy(spec.name, settings, time_limit=spec.time_limit).time_limit
            for spec in specs}


async def serve(settings: Settings, extra_specs: Iterable[TaskSpec] = (),
                stop: asyncio.Event | None = None) -> None:
    """Run the bridge until ``stop`` is set (or SIGTERM/SIGINT when not given)."""
    specs = {**task_specs(), **{spec.name: spec for spec in extra_specs}}
    queues = bridged_queues(settings)
    metrics = BridgeMetrics()
    connection = BrokerConnection(settings, build_topology(settings), name="cargo-bridge")
    publisher = Publisher(connection, settings.publish_timeout)
    announcer = Announcer(publisher)
    bridge = Bridge(settings, connection, publisher, announcer, metrics, queues,
                    known_tasks=set(specs), time_limits=task_time_limits(settings,
                                                                        specs.values()))
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


def run_bridge(settings: Settings, extra_specs: Iterable[TaskSpec] = ()) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, extra_specs))
