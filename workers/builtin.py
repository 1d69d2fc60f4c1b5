"""Cargo's built-in tasks, loaded by default (``CARGO_TASK_MODULES=workers.builtin``).

The original design's ``calculate_distance`` and ``memory_leak_task``, and
``sleep`` (demos, the canary, redelivery tests), registered as ordinary Celery
shared tasks: Cargo runs them exactly as it runs a team's own.

The functions stay plain in ``workers.tasks`` (tests call them directly and derive
their schemas). A worker offers the tasks whose class comes from a module it
loaded (``workers.modules``), and Celery names a task class's module after its
function's, so each is registered here through a copy that belongs to this
module (same code, same globals: type hints, defaults and leaked memory are
``workers.tasks``'s own).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from celery import shared_task

from workers import tasks


def _here(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` as a function of this module (see the module docstring)."""
    assert isinstance(func, types.FunctionType)
    copy = types.FunctionType(func.__code__, func.__globals__, func.__name__,
                              func.__defaults__, func.__closure__)
    copy.__kwdefaults__ = func.__kwdefaults__
    copy.__annotations__ = dict(func.__annotations__)
    copy.__doc__ = func.__doc__
    copy.__qualname__ = func.__qualname__
    copy.__module__ = __name__
    return copy


calculate_distance = shared_task(name="calculate_distance")(_here(tasks.calculate_distance))
# Its longest allowed run, plus a minute.
sleep = shared_task(name="sleep", time_limit=tasks.MAX_SLEEP_SECONDS + 60)(_here(tasks.sleep))
# Leaking is its whole point: retrying it would only leak again.
memory_leak_task = shared_task(name="memory_leak_task", max_retries=0,
                               time_limit=tasks.MAX_LEAK_SECONDS + 60)(
    _here(tasks.memory_leak_task))
