"""Extra AMQP channels on the gateway's one connection, opened and closed so that
no cancellation can leave one half-open or half-closed.

A cancelled ``channel.open`` or ``channel.close`` (a timeout, a WebSocket client
that went away, a scrape that gave up) leaves the client's and the broker's view
of that channel number out of step, and RabbitMQ answers the next frame on it by
closing the whole connection (``504 CHANNEL_ERROR - expected 'channel.open'``),
which takes the publisher's confirm channel with it. So both run shielded: a
caller that is cancelled stops waiting, and the open (then a close) or the close
still finishes in the background.

Closing the channel is also how a stream consumer ends: ``basic.cancel`` in
aio-pika nacks the deliveries it still buffers, and a stream answers ``basic.nack``
with a connection error (``540 NOT_IMPLEMENTED``). Closing a channel drops its
unacknowledged stream deliveries, which is all a stream reader wants.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection

log = structlog.get_logger(__name__)

CLOSE_SECONDS = 5.0
# A close that outlives its caller stays referenced by what it awaits (the
# connection's pending RPC future), so no registry of background tasks is kept.


async def open_channel(connection: AbstractConnection, **kwargs: Any) -> AbstractChannel:
    """``connection.channel(**kwargs)``; when the caller is cancelled meanwhile, the
    open completes anyway and the channel is closed properly."""
    opening = asyncio.ensure_future(connection.channel(**kwargs))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_when_opened)
        raise


def _close_when_opened(opening: asyncio.Future[AbstractChannel]) -> None:
    if opening.cancelled() or opening.exception() is not None:
        return
    # Referenced by the connection's RPC future it awaits until it is done.
    asyncio.ensure_future(_close(opening.result()))  # noqa: RUF006


async def close_channel(channel: AbstractChannel) -> None:
    """Close ``channel``; a cancelled caller stops waiting, the close goes on."""
    await asyncio.shield(_close(channel))


async def _close(channel: AbstractChannel) -> None:
    if channel.is_closed:
        return
    try:
        await asyncio.wait_for(channel.close(), CLOSE_SECONDS)
    except Exception as exc:  # the connection is going anyway, or it is already closed
        log.debug("channel.close_failed", error=f"{type(exc).__name__}: {exc}")


@contextlib.asynccontextmanager
async def side_channel(connection: AbstractConnection, *, open_timeout: float | None = None,
                       **kwargs: Any) -> AsyncIterator[AbstractChannel]:
    """``async with side_channel(connection) as channel:`` — opened (within
    ``open_timeout`` seconds: ``TimeoutError``) and closed safely."""
    channel = await asyncio.wait_for(open_channel(connection, **kwargs), open_timeout)
    try:
        yield channel
    finally:
        await close_channel(channel)
