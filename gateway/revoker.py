"""``DELETE /tasks/{id}``'s mechanism: Celery revoke broadcasts, repeated when needed.

A revoke reaches the workers running at that moment (``broker.control``). A
worker that starts later (a KEDA scale-up, a restart) has never heard of it:
Cargo's workers run without Celery's *mingle*, which would copy the revoked ids
at start. So the gateway remembers what it revoked (bounded, newest kept) and,
when the events stream shows such a task ``started`` anyway, broadcasts the
revoke again: that worker stops it, and it still ends ``revoked``. A gateway
that restarts forgets its revocations; a task revoked just before that and
started later by a new worker runs to its end.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from types import TracebackType
from typing import Self

import aio_pika
import structlog

from broker.connection import BrokerConnection
from broker.control import (
    CONTROL_CONTENT_TYPE,
    CONTROL_EXCHANGE,
    CONTROL_EXCHANGE_TYPE,
    revoke_broadcast,
    revoke_headers,
)
from broker.events import TERMINAL_STATES, TaskEvent, TaskState
from broker.publisher import BrokerUnavailable
from gateway.side_channels import side_channel

log = structlog.get_logger(__name__)

REMEMBERED = 10_000  # revocations kept for a repeat; the oldest are dropped first


class Revoker:
    """Revokes tasks; on leaving ``async with``, the repeats under way are cancelled."""

    def __init__(self, broker: BrokerConnection, timeout: float) -> None:
        self._broker = broker
        self._timeout = timeout
        self._revoked: OrderedDict[str, None] = OrderedDict()
        self._repeats: set[asyncio.Task[None]] = set()

    async def revoke(self, task_id: str) -> None:
        """Broadcast the revoke and remember it; ``BrokerUnavailable`` if not confirmed."""
        await self._broadcast(task_id)
        self._revoked[task_id] = None
        self._revoked.move_to_end(task_id)
        while len(self._revoked) > REMEMBERED:
            self._revoked.popitem(last=False)

    def on_event(self, event: TaskEvent) -> None:
        """Events-stream listener: repeat the revoke for a revoked task that starts."""
        if event.task_id not in self._revoked:
            return
        if event.state in TERMINAL_STATES:
            del self._revoked[event.task_id]
        elif event.state is TaskState.STARTED:
            repeat = asyncio.get_running_loop().create_task(self._repeat(event.task_id))
            self._repeats.add(repeat)
            repeat.add_done_callback(self._repeats.discard)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        for repeat in list(self._repeats):
            repeat.cancel()
        await asyncio.gather(*self._repeats, return_exceptions=True)

    async def _repeat(self, task_id: str) -> None:
        try:
            await self._broadcast(task_id)
            log.info("revoke.repeated", task_id=task_id)
        except BrokerUnavailable as exc:
            log.warning("revoke.repeat_failed", task_id=task_id, error=str(exc))

    async def _broadcast(self, task_id: str) -> None:
        connection = self._broker.connection
        if connection is None:
            raise BrokerUnavailable("not connected to the broker")
        try:
            # A channel of its own: the shared confirm channel's delivery tags belong to
            # the task publisher. Revokes are rare; a channel per revoke is cheap enough.
            # (gateway.side_channels: a timed-out open must not leave it half-open.)
            async with side_channel(connection, open_timeout=self._timeout,
                                    publisher_confirms=True) as channel:
                exchange = await channel.declare_exchange(
                    CONTROL_EXCHANGE, CONTROL_EXCHANGE_TYPE, durable=False, auto_delete=False,
                    timeout=self._timeout)
                await exchange.publish(
                    aio_pika.Message(revoke_broadcast([task_id]),
                                     content_type=CONTROL_CONTENT_TYPE,
                                     content_encoding="utf-8", headers=revoke_headers()),
                    routing_key="", timeout=self._timeout)
        except (TimeoutError, aio_pika.exceptions.AMQPError, ConnectionError) as exc:
            raise BrokerUnavailable(
                f"the revoke was not confirmed: {type(exc).__name__}: {exc}") from None
