"""kombu's event loop (the hub Celery's consumer runs on), used by ``workers.event_relay``.

What it touches, written against kombu 5.7.0 (pinned in ``pyproject.toml``):
``kombu.asynchronous.Hub.on_tick``, the set of callables the hub calls once
per loop iteration (Celery's consumer uses it; kombu does not document it),
and the hub's ``add_reader``/``remove_reader``/``call_repeatedly``.

Why: the relay publishes once per loop iteration, on the consumer's own loop,
without a thread or a lock (a relay thread measured costlier than the
publishes it saved). Relayed, a short task cost 709 tasks/s and 0.55 ms of
RabbitMQ CPU at 8 processes, against 650/s and 0.82 ms with every child
publishing its own (bench/RESULTS.md, "What each change bought").

``tests/unit/test_adapters_kombu.py`` fails, naming kombu and its version, when an
upgrade changes any of this: re-measure, then update this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PINNED = {"kombu": "5.7.0"}


def call_every_tick(hub: Any, callback: Callable[[], None]) -> None:
    """Have the hub call ``callback`` once per loop iteration."""
    hub.on_tick.add(callback)


def stop_calling_every_tick(hub: Any, callback: Callable[[], None]) -> None:
    hub.on_tick.discard(callback)


def watch_readable(hub: Any, fd: int, callback: Callable[[], None]) -> None:
    """Call ``callback`` on the hub whenever ``fd`` is readable."""
    hub.add_reader(fd, callback)


def unwatch(hub: Any, fd: int) -> None:
    hub.remove_reader(fd)


def call_repeatedly(hub: Any, seconds: float, callback: Callable[[], None]) -> Any:
    """A timer entry calling ``callback`` every ``seconds``; ``.cancel()`` ends it."""
    return hub.call_repeatedly(seconds, callback)
