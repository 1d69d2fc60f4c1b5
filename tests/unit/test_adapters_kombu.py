"""workers.kombu_hub_adapter still holds for the installed kombu: the hub calls a tick
callback once per loop iteration, a readable descriptor's reader, and a repeated timer."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from kombu.asynchronous import Hub

from tests.unit.adapter_pins import assert_pinned, changed
from workers import kombu_hub_adapter
from workers.kombu_hub_adapter import (
    call_every_tick,
    call_repeatedly,
    stop_calling_every_tick,
    unwatch,
    watch_readable,
)


@pytest.fixture
def hub() -> Iterator[Hub]:
    made = Hub()
    yield made
    made.close()


def test_kombu_is_the_version_the_adapter_was_written_against() -> None:
    assert_pinned(kombu_hub_adapter)


def test_the_hub_calls_a_tick_callback_once_per_iteration_until_stopped(hub: Hub) -> None:
    ticks: list[None] = []

    def tick() -> None:
        ticks.append(None)

    call_every_tick(hub, tick)
    loop = hub.create_loop()
    next(loop)
    next(loop)
    assert len(ticks) == 2, changed("kombu", kombu_hub_adapter, "Hub.on_tick")
    stop_calling_every_tick(hub, tick)
    next(loop)
    assert len(ticks) == 2


def test_the_hub_calls_a_reader_when_its_descriptor_is_readable(hub: Hub) -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        read: list[bytes] = []
        watch_readable(hub, ours.fileno(), lambda: read.append(ours.recv(10)))
        theirs.send(b"x")
        loop = hub.create_loop()
        for _ in range(3):
            next(loop)
            if read:
                break
        assert read == [b"x"], changed("kombu", kombu_hub_adapter, "Hub.add_reader")
        unwatch(hub, ours.fileno())


def test_a_repeated_call_can_be_cancelled(hub: Hub) -> None:
    entry = call_repeatedly(hub, 60.0, lambda: None)
    assert callable(getattr(entry, "cancel", None)), changed(
        "kombu", kombu_hub_adapter, "Hub.call_repeatedly's timer entry")
    entry.cancel()
