"""The task functions themselves: plain Python, no Celery.

The catalog (``workers.catalog``) builds argument validation from these
signatures, so the type hints and ``Field`` bounds here are the contract: what
the gateway accepts and what a worker runs are the same rules.
"""

from __future__ import annotations

import math
import time
from typing import Annotated

from pydantic import Field

from workers.progress import report_progress

MAX_SLEEP_SECONDS = 3600
MAX_SLEEP_STEPS = 1000


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
