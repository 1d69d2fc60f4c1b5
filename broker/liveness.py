"""An active check that the broker still answers on an open connection.

A frozen broker (process stopped, host hung, network silently dropping) keeps
the TCP connection open and sends nothing. AMQP heartbeats notice that only
after about three heartbeat intervals (aiormq's grace), i.e. minutes with
RabbitMQ's default; meanwhile every publish waits for a confirm that never
comes. So every ``interval`` seconds the supervisor makes one round trip on a
channel of its own (``basic.qos``: answered by the broker, changes nothing)
and gives up on the connection when no answer comes within ``timeout``.

A connection that carries a busy consumer can say when it last heard from the
broker (``heard_from``: the ``time.monotonic()`` of its latest delivery): a
broker that delivered within the timeout is not frozen, however far behind
those deliveries its answer waits in the socket.

The timeout counts only time the event loop could have read the answer
(:func:`answered_within`): a loop kept busy for seconds by other work (a
WebSocket fan-out to thousands of clients) reads an answer that came long ago
late, and that is not the broker's silence. Taking it for one dropped the
connection and failed the submissions in flight (issue 13: 932 of 1,000
submissions answered 503 while 1,000 clients listened to ``all``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aio_pika.abc import AbstractConnection

T = TypeVar("T")
# The timeout is counted in steps of at most this many seconds of the loop's time.
STEP = 0.1


async def answered_within(awaitable: Awaitable[T], timeout: float, step: float = STEP) -> T:
    """``awaitable``'s result, or TimeoutError (and it is cancelled) when it took
    longer than ``timeout`` seconds of the loop's attention.

    Waits in steps of ``step`` seconds and counts each as at most ``step``, however
    late the loop woke from it: while the loop was busy elsewhere, an answer
    could sit unread in the socket.
    """
    future = asyncio.ensure_future(awaitable)
    loop = asyncio.get_running_loop()
    waited = 0.0
    try:
        while True:
            started = loop.time()
            done, _ = await asyncio.wait({future}, timeout=min(step, max(timeout - waited, 0)))
            if done:
                return future.result()
            waited += min(loop.time() - started, step)
            if waited >= timeout:
                raise TimeoutError(f"no answer within {timeout:g}s")
    finally:
        if not future.done():
            future.cancel()


async def _answer(awaitable: Awaitable[T], timeout: float, silent: Callable[[], bool]) -> T:
    """``awaitable``'s result; TimeoutError once it took longer than ``timeout`` of
    the loop's attention and ``silent()`` says the broker delivered nothing lately.
    While deliveries come, the same request goes on waiting: cancelling an RPC
    would close its channel."""
    future = asyncio.ensure_future(awaitable)
    try:
        while True:
            try:
                return await answered_within(asyncio.shield(future), timeout)
            except TimeoutError:
                if silent():
                    raise
    finally:
        if not future.done():
            future.cancel()


async def broker_stopped_answering(connection: AbstractConnection, interval: float,
                                   timeout: float,
                                   heard_from: Callable[[], float] | None = None) -> str:
    """Run until the broker fails to answer a round trip in time, and did not
    deliver anything within that time either (``heard_from``); return why."""

    def silent() -> bool:
        return heard_from is None or time.monotonic() - heard_from() >= timeout

    try:
        channel = await _answer(connection.channel(publisher_confirms=False), timeout, silent)
    except TimeoutError:
        return f"the broker did not open a channel within {timeout:g}s (frozen or cut off)"
    # The channel goes with the connection, which the caller drops after a failure.
    while True:
        await asyncio.sleep(interval)
        try:
            await _answer(channel.set_qos(prefetch_count=0), timeout, silent)
        except TimeoutError:
            return (f"the broker did not answer a liveness check within {timeout:g}s "
                    "(frozen, or the network drops its traffic)")
