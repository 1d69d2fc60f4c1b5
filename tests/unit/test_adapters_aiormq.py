"""broker.aiormq_adapter still holds for the installed aiormq: the private channel state it
writes is where it was, and aiormq settles what the adapter registered."""

from __future__ import annotations

import asyncio
import inspect
import types
from collections.abc import AsyncIterator
from typing import Any

import aiormq
import pytest
from aiormq.abc import ChannelFrame
from aiormq.base import Base
from pamqp import commands

from broker import aiormq_adapter
from broker.aiormq_adapter import fail_unsettled, max_body_frame, write_confirmed, writer_busy
from tests.unit.adapter_pins import assert_pinned, changed

FRAME_MAX = 131072


class Connector(Base):
    """The part of an aiormq connection a Channel reads when it is made."""

    publisher_confirms = True

    def __init__(self) -> None:
        super().__init__(loop=asyncio.get_running_loop())
        self.write_queue: asyncio.Queue[ChannelFrame] = asyncio.Queue(maxsize=2)
        self.connection_tune = types.SimpleNamespace(frame_max=FRAME_MAX)

    async def _on_close(self, exc: BaseException | type[BaseException] | None = None) -> None:
        return None

    def __str__(self) -> str:
        return "connector"


@pytest.fixture
async def channel() -> AsyncIterator[tuple[Connector, aiormq.Channel]]:
    connector = Connector()
    try:
        made = aiormq.Channel(connector, 1)  # type: ignore[arg-type]
    except Exception as exc:
        pytest.fail(changed("aiormq", aiormq_adapter, f"Channel(connector, number) ({exc!r})"))
    yield connector, made
    await connector.close()


async def broker_says(channel: aiormq.Channel, frame: Any) -> None:
    """Hand ``frame`` to the channel as its connection's reader does, and let it act."""
    channel.frames.put_nowait((0, frame))
    for _ in range(5):
        await asyncio.sleep(0)


def test_aiormq_is_the_version_the_adapter_was_written_against() -> None:
    assert_pinned(aiormq_adapter)


@pytest.mark.parametrize("attribute", [
    "write_queue", "confirmations", "delivery_tag", "message_id_delivery_tag",
    "max_content_size",
])
def test_aiormq_channel_still_sets_each_attribute_the_adapter_uses(attribute: str) -> None:
    source = inspect.getsource(aiormq.Channel.__init__)
    assert f"self.{attribute} =" in source or f"self.{attribute}:" in source, changed(
        "aiormq", aiormq_adapter, f"Channel.{attribute} (no longer set in Channel.__init__)")


def test_aiormq_still_finds_a_returned_publish_by_its_message_id() -> None:
    source = inspect.getsource(aiormq.Channel._on_return_frame)
    assert "message_id_delivery_tag" in source, changed(
        "aiormq", aiormq_adapter, "Channel._on_return_frame (no longer reads "
        "message_id_delivery_tag)")


def test_aiormq_channel_frame_still_takes_a_payload_and_should_close() -> None:
    parameters = inspect.signature(ChannelFrame).parameters
    assert {"payload", "should_close"} <= set(parameters), changed(
        "aiormq", aiormq_adapter, f"ChannelFrame's fields ({list(parameters)})")


async def test_a_batch_is_one_write_with_tags_in_order(
        channel: tuple[Connector, aiormq.Channel]) -> None:
    connector, made = channel
    loop = asyncio.get_running_loop()
    confirmations = [loop.create_future() for _ in range(3)]
    write_confirmed(made, list(zip("abc", confirmations, strict=True)), b"frames")
    written = connector.write_queue.get_nowait()
    assert connector.write_queue.empty()
    assert (written.payload, written.should_close) == (b"frames", False)
    assert made.delivery_tag == 3
    assert made.message_id_delivery_tag == {"a": 1, "b": 2, "c": 3}
    assert [made.confirmations[tag] for tag in (1, 2, 3)] == confirmations


async def test_aiormq_settles_registered_confirms_on_ack_and_nack(
        channel: tuple[Connector, aiormq.Channel]) -> None:
    _, made = channel
    loop = asyncio.get_running_loop()
    confirmations = [loop.create_future() for _ in range(3)]
    write_confirmed(made, list(zip("abc", confirmations, strict=True)), b"frames")
    await broker_says(made, commands.Basic.Ack(delivery_tag=2, multiple=True))
    await broker_says(made, commands.Basic.Nack(delivery_tag=3))
    problem = changed("aiormq", aiormq_adapter, "how Channel settles confirmations on Ack/Nack")
    assert all(c.done() for c in confirmations), problem
    assert confirmations[0].exception() is None, problem
    assert confirmations[1].exception() is None, problem
    # broker.publisher maps this to QueueFull.
    assert isinstance(confirmations[2].exception(), aiormq.exceptions.DeliveryError), problem
    assert made.message_id_delivery_tag == {}, "a settled publish's message id is forgotten"


async def test_unsettled_confirms_fail_with_the_given_error(
        channel: tuple[Connector, aiormq.Channel]) -> None:
    _, made = channel
    loop = asyncio.get_running_loop()
    settled, waiting = loop.create_future(), loop.create_future()
    write_confirmed(made, [("a", settled), ("b", waiting)], b"frames")
    settled.set_result(None)
    fail_unsettled(made, lambda: ConnectionError("gone"))
    assert settled.result() is None
    assert isinstance(waiting.exception(), ConnectionError)


async def test_the_writer_is_busy_when_its_queue_is_full_and_bodies_split_by_frame_max(
        channel: tuple[Connector, aiormq.Channel]) -> None:
    connector, made = channel
    assert not writer_busy(made)
    connector.write_queue.put_nowait(ChannelFrame(payload=b"", should_close=False))
    connector.write_queue.put_nowait(ChannelFrame(payload=b"", should_close=False))
    assert writer_busy(made)
    # A body frame's payload is frame_max less the frame's 8 bytes of header and end.
    assert max_body_frame(made) == FRAME_MAX - 8, changed(
        "aiormq", aiormq_adapter, "Channel.max_content_size")
