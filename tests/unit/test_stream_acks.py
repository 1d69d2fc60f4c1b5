"""The events reader's batched stream acks and the liveness check's patience with a busy loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from broker.liveness import answered_within, broker_stopped_answering
from gateway.events_reader import BatchedAcks


class FakeMessage:
    """Records ``ack`` calls, as aio-pika's incoming message would send them."""

    def __init__(self, tag: int, acks: list[tuple[int, bool]],
                 sent: asyncio.Event | None = None) -> None:
        self.delivery_tag = tag
        self._acks = acks
        self._sent = sent or asyncio.Event()

    async def ack(self, multiple: bool = False) -> None:
        self._acks.append((self.delivery_tag, multiple))
        self._sent.set()


def block_the_loop(seconds: float) -> None:
    """What a long synchronous fan-out does to every other coroutine."""
    time.sleep(seconds)


async def _settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_stream_messages_are_acknowledged_once_per_batch_up_to_the_latest() -> None:
    sent: list[tuple[int, bool]] = []
    acks = BatchedAcks(every=3, delay=3600)
    for tag in range(1, 8):
        acks.add(FakeMessage(tag, sent))  # type: ignore[arg-type]
    await _settle()
    assert sent == [(3, True), (6, True)]


async def test_the_last_messages_of_a_quiet_spell_are_acknowledged_after_the_delay() -> None:
    sent: list[tuple[int, bool]] = []
    acked = asyncio.Event()
    acks = BatchedAcks(every=100, delay=0.01)
    for tag in (1, 2):
        acks.add(FakeMessage(tag, sent, acked))  # type: ignore[arg-type]
    await asyncio.wait_for(acked.wait(), 5)
    assert sent == [(2, True)]


async def test_after_a_reconnect_the_old_channels_deliveries_are_neither_acked_nor_counted(
) -> None:
    sent: list[tuple[int, bool]] = []
    acks = BatchedAcks(every=2, delay=0.01)
    acks.add(FakeMessage(7, sent))  # type: ignore[arg-type]
    acks.drop()
    # A witness armed after the drop, with the same delay: once its ack is sent,
    # the old channel's timer would have fired (and its ack been sent) before it.
    witnessed: list[tuple[int, bool]] = []
    witness_acked = asyncio.Event()
    BatchedAcks(every=2, delay=0.01).add(
        FakeMessage(99, witnessed, witness_acked))  # type: ignore[arg-type]
    await asyncio.wait_for(witness_acked.wait(), 5)
    assert witnessed == [(99, True)]
    assert sent == []
    acks = BatchedAcks(every=2, delay=3600)
    acks.add(FakeMessage(7, sent))  # type: ignore[arg-type]
    acks.drop()
    acks.add(FakeMessage(1, sent))  # type: ignore[arg-type]  # the new channel's first
    await _settle()
    assert sent == []
    acks.add(FakeMessage(2, sent))  # type: ignore[arg-type]
    await _settle()
    assert sent == [(2, True)]


async def test_an_answer_read_late_because_the_loop_was_busy_is_not_a_timeout() -> None:
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def reply_arrives() -> None:  # it takes the reader a few loop hops to resolve it
        loop.call_soon(loop.call_soon, answer.set_result, "qos-ok")

    loop.call_later(0.001, reply_arrives)
    waiting = asyncio.ensure_future(answered_within(answer, timeout=0.05, step=0.01))
    await asyncio.sleep(0)
    block_the_loop(0.2)  # four times the timeout
    assert await waiting == "qos-ok"


async def test_no_answer_within_the_loops_attention_is_a_timeout_and_cancels_the_wait() -> None:
    never: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await answered_within(never, timeout=0.05, step=0.01)
    assert never.cancelled()


class SilentChannel:
    """A channel whose broker never answers a round trip."""

    def __init__(self) -> None:
        self.requests = 0
        self.cancelled = 0

    async def set_qos(self, prefetch_count: int) -> None:
        self.requests += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1  # aiormq closes a channel whose RPC is cancelled
            raise


class SilentConnection:
    def __init__(self) -> None:
        self.opened = SilentChannel()

    async def channel(self, publisher_confirms: bool = False) -> SilentChannel:
        return self.opened


async def test_a_broker_still_delivering_is_not_taken_for_frozen_until_deliveries_stop() -> None:
    last_delivery = [time.monotonic()]
    connection = SilentConnection()
    check = asyncio.ensure_future(broker_stopped_answering(
        connection, interval=0.01, timeout=0.05,  # type: ignore[arg-type]
        heard_from=lambda: last_delivery[0]))
    for _ in range(20):  # deliveries keep coming while no round trip is answered
        last_delivery[0] = time.monotonic()
        await asyncio.sleep(0.02)
    assert not check.done()
    # The one request waits on: cancelling it would have closed its channel.
    assert (connection.opened.requests, connection.opened.cancelled) == (1, 0)
    reason = await asyncio.wait_for(check, 10)  # deliveries stopped
    assert "did not answer a liveness check" in reason
