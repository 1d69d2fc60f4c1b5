"""An active check that the broker still answers on an open connection.

A frozen broker (process stopped, host hung, network silently dropping) keeps
the TCP connection open and sends nothing. AMQP heartbeats notice that only
after about three heartbeat intervals (aiormq's grace), i.e. minutes with
RabbitMQ's default; meanwhile every publish waits for a confirm that never
comes. So every ``interval`` seconds the supervisor makes one round trip on a
channel of its own (``basic.qos``: answered by the broker, changes nothing)
and gives up on the connection when no answer comes within ``timeout``.
"""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractConnection


async def broker_stopped_answering(connection: AbstractConnection, interval: float,
                                   timeout: float) -> str:
    """Run until the broker fails to answer a round trip in time; return why."""
    try:
        channel = await asyncio.wait_for(connection.channel(publisher_confirms=False), timeout)
    except TimeoutError:
        return f"the broker did not open a channel within {timeout:g}s (frozen or cut off)"
    # The channel goes with the connection, which the caller drops after a failure.
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.wait_for(channel.set_qos(prefetch_count=0), timeout)
        except TimeoutError:
            return (f"the broker did not answer a liveness check within {timeout:g}s "
                    "(frozen, or the network drops its traffic)")
