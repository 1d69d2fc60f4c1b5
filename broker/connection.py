"""A supervised AMQP connection: connect, declare, serve, and reconnect by itself.

aio-pika's robust connection restores consumers with the arguments they were
first opened with; for the events stream that would replay from the original
offset after every reconnect. This supervisor instead runs an explicit loop —
connect, open a confirm channel, declare the topology, run the ``on_connect``
hooks (the events reader resumes *after* its last offset there), mark ready,
wait for the connection or channel to close, repeat — so readiness is exactly
"connected with topology declared" and every resource knows where to resume.

While connected it also checks that the broker still answers
(:mod:`broker.liveness`): a frozen broker keeps the TCP connection open and
silent, which heartbeats alone notice only after minutes. Every failure is
described by :mod:`broker.failures` (a missing vhost, refused access), and a
lost vhost is announced to ``on_vhost_lost`` callbacks: its streams are new.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection

from broker.addresses import AddressRotation
from broker.declare import declare_topology
from broker.failures import Failure, describe, refusal_reason, refused_open
from broker.liveness import broker_stopped_answering
from broker.settings import BrokerSettings
from broker.topology import Topology

log = structlog.get_logger(__name__)

OnConnect = Callable[[AbstractConnection], Awaitable[None]]


class BrokerConnection:
    """Owns one AMQP connection and one publisher-confirm channel, and keeps them up
    from ``async with`` to its end (hooks registered before entering)."""

    def __init__(self, settings: BrokerSettings, topology: Topology, *, name: str = "cargo",
                 heard_from: Callable[[], float] | None = None) -> None:
        """``heard_from``: the ``time.monotonic()`` of the latest delivery on this
        connection, for the liveness check (:mod:`broker.liveness`)."""
        self._settings = settings
        self._heard_from = heard_from
        self._topology = topology
        self._name = name
        # RABBITMQ_URL may name several nodes of one cluster: tried in turn.
        self._addresses = AddressRotation(settings.rabbitmq_urls)
        self._hooks: list[OnConnect] = []
        self._vhost_lost_callbacks: list[Callable[[], None]] = []
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._underlay: aiormq.Channel | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = "not connected yet"

    def on_connect(self, hook: OnConnect) -> None:
        """Run ``hook(connection)`` after every (re)connect, before becoming ready."""
        self._hooks.append(hook)

    def on_vhost_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the vhost was deleted or is missing."""
        self._vhost_lost_callbacks.append(callback)

    @property
    def ready(self) -> bool:
        return (
            self._ready.is_set()
            and self._channel is not None
            and not self._channel.is_closed
            and self._connection is not None
            and not self._connection.is_closed
        )

    @property
    def connection(self) -> AbstractConnection | None:
        """The live connection (for extra channels), or None while disconnected."""
        return self._connection if self.ready else None

    @property
    def channel(self) -> AbstractChannel | None:
        """The confirm channel, or None while disconnected."""
        return self._channel if self.ready else None

    @property
    def confirm_channel(self) -> aiormq.Channel | None:
        """The confirm channel's aiormq channel (the publisher writes frames on it), or None."""
        return self._underlay if self.ready else None

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self.ready

    async def __aenter__(self) -> Self:
        """Start supervising: connects in the background, ``wait_ready`` to wait for it."""
        self._task = asyncio.create_task(self._supervise(), name=f"{self._name}-broker")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close()

    async def _close(self) -> None:
        self._ready.clear()
        connection, self._connection, self._channel = self._connection, None, None
        self._underlay = None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)

    async def _supervise(self) -> None:
        while True:
            try:
                await self._connect_once()
                self.last_error = None
                log.info("broker.connected", name=self._name)
                failure = await self._wait_closed()
                self._failed(failure)
                log.warning("broker.disconnected", name=self._name, error=self.last_error,
                            vhost_lost=failure.vhost_lost)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = describe(exc, self._settings.vhost)
                if refused_open(exc):  # aiormq lost the broker's reply code: ask again
                    failure = await refusal_reason(
                        self._addresses.current, self._settings.vhost,
                        self._settings.connect_timeout) or failure
                self._failed(failure)
                log.warning("broker.connect_failed", name=self._name, error=self.last_error,
                            vhost_lost=failure.vhost_lost)
            self._addresses.failed()  # lost or never reached: the next node's turn
            await self._close()
            await asyncio.sleep(self._settings.reconnect_interval)

    def _failed(self, failure: Failure) -> None:
        self.last_error = failure.reason
        if failure.vhost_lost:
            for callback in self._vhost_lost_callbacks:
                callback()

    async def _connect_once(self) -> None:
        connection = await aio_pika.connect(
            self._addresses.current,
            timeout=self._settings.connect_timeout,
            client_properties={"connection_name": self._name},
            heartbeat=self._settings.broker_heartbeat,
        )
        self._connection = connection
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await declare_topology(channel, self._topology)
        self._channel = channel
        underlay = await channel.get_underlay_channel()
        if not isinstance(underlay, aiormq.Channel):  # the publisher writes on aiormq's own
            raise TypeError(f"unexpected AMQP channel type {type(underlay).__name__}")
        self._underlay = underlay
        for hook in self._hooks:
            await hook(connection)
        self._ready.set()

    async def _wait_closed(self) -> Failure:
        """Wait until the connection or the confirm channel closes (a channel error
        closes only the channel) or the broker stops answering; say why."""
        assert self._connection is not None
        assert self._channel is not None
        closed = self._connection.closed()
        # aio-pika hands the connection's close exception (the broker's reply) to these.
        reason: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

        def on_close(_: object, exc: BaseException | None) -> None:
            if not reason.done():
                reason.set_result(exc)

        self._connection.close_callbacks.add(on_close)
        silent = asyncio.ensure_future(broker_stopped_answering(
            self._connection, self._settings.broker_check_interval,
            self._settings.connect_timeout, self._heard_from))
        waiters: set[asyncio.Future[Any]] = {
            asyncio.ensure_future(closed), asyncio.ensure_future(self._channel.closed()),
            silent, reason}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if self._connection.is_closed and not reason.done():  # its reason comes next
                await asyncio.wait({reason}, timeout=1)
        finally:
            for waiter in waiters - {reason}:
                waiter.cancel()
            self._ready.clear()
        if silent.done() and not silent.cancelled() and silent.exception() is None:
            return Failure(silent.result())
        if reason.done():
            return describe(reason.result(), self._settings.vhost)
        return Failure("connection lost" if self._connection.is_closed
                       else "the confirm channel closed")
