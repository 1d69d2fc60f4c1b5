"""The task functions themselves: plain Python, no Celery.

``workers.builtin`` registers them as Celery shared tasks, and the worker
announces their signatures as JSON Schemas (``workers.schemas``): the type hints
and ``Field`` bounds here are what every gateway accepts for them.
"""

from __future__ import annotations

import math
import time
from typing import Annotated

from pydantic import Field

from workers.progress import report_progress

MAX_SLEEP_SECONDS = 3600
MAX_SLEEP_STEPS = 1000
MAX_LEAK_SECONDS = 3600
MIB = 1024 * 1024
# How often memory_leak_task allocates; each allocation is at most two steps' worth.
LEAK_STEP_SECONDS = 0.02

# memory_leak_task keeps what it allocates here, so the memory stays taken in
# the worker process after the task (a real leak, not a big local variable).
_leaked: list[bytes] = []


def calculate_distance(x: float, y: float) -> float:
    """Euclidean distance of the point (x, y) from the origin."""
    return math.hypot(x, y)


def sleep(
    seconds: Annotated[float, Field(ge=0, le=MAX_SLEEP_SECONDS)],
    steps: Annotated[int, Field(ge=1, le=MAX_SLEEP_STEPS)] = 1,
) -> float:
    """Sleep ``seconds`` in ``steps`` equal steps, reporting progress after each.

    A long-running task with observable progress, for demos, the canary and
    tests of redelivery. Returns ``seconds``.
    """
    for done in range(1, steps + 1):
        time.sleep(seconds / steps)
        report_progress(done=done, total=steps)
    return seconds


def memory_leak_task(
    mb_per_second: Annotated[float, Field(gt=0, le=1024)] = 16.0,
    seconds: Annotated[float, Field(ge=0, le=MAX_LEAK_SECONDS)] = MAX_LEAK_SECONDS,
) -> float:
    """Leak ``mb_per_second`` MiB of memory per second, for up to ``seconds``.

    The original design's deliberately leaky task. The memory is written (so it
    is resident, not just reserved) and kept referenced after the task returns.
    A worker's memory guard stops it once it grows past its memory limit; it
    reports ``{"leaked_mb": n}`` as progress about once a second. Returns the
    MiB leaked when it ran out of time first.
    """
    rate = mb_per_second * MIB
    max_chunk = max(1, int(rate * LEAK_STEP_SECONDS * 2))
    started = time.monotonic()
    leaked = 0
    next_report = 1.0
    while (elapsed := time.monotonic() - started) < seconds:
        # Allocate by elapsed time, so the rate holds whatever the scheduler does,
        # but never more than two steps' worth at once.
        due = min(int(elapsed * rate) - leaked, max_chunk)
        if due > 0:
            _leaked.append(b"\x01" * due)
            leaked += due
        if elapsed >= next_report:
            report_progress(leaked_mb=round(leaked / MIB, 1))
            next_report += 1.0
        time.sleep(LEAK_STEP_SECONDS)
    return round(leaked / MIB, 1)
