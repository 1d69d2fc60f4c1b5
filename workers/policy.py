"""Per-task retry and limit policy: what the catalog says, what the environment overrides.

Pure (no Celery), so the rules are unit-tested on their own:

- A task that raises is retried up to ``max_retries`` times, each after an
  exponentially growing delay with jitter (:func:`backoff_delay`), then
  dead-lettered with reason ``failed``. An error that retrying cannot fix
  (:class:`PermanentError`, or ``TypeError`` — bad arguments, a programming
  error — or any type the task's spec lists) goes to the dead-letter queue at once.
- Limits: a hard time limit and a memory limit (growth of the process running
  the task over its size when the task started).

Precedence for each value: ``CARGO_TASK_LIMITS`` for that task name, then the
task's :class:`~workers.catalog.TaskSpec`, then the global default setting.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from broker.settings import Settings, TaskLimits

MIB = 1024 * 1024
# The largest retry budget a message or CARGO_TASK_LIMITS may ask for.
MAX_RETRY_BUDGET = 100


class PermanentError(Exception):
    """Raise from a task for a failure no retry can fix: it is dead-lettered at once."""


# Errors retrying cannot fix. TypeError covers arguments that do not fit the
# task (the worker validates them again) and plain programming errors.
NON_RETRYABLE: tuple[type[BaseException], ...] = (PermanentError, TypeError)


@dataclass(frozen=True)
class TaskPolicy:
    max_retries: int
    retry_backoff: float
    retry_backoff_max: float
    time_limit: float
    memory_limit_bytes: int
    non_retryable: tuple[type[BaseException], ...] = NON_RETRYABLE

    def retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, Exception) and not isinstance(exc, self.non_retryable)

    def should_retry(self, exc: BaseException, retries: int) -> bool:
        """Whether the attempt that just failed (``retries`` before it) runs again."""
        return self.retryable(exc) and retries < self.max_retries

    def retry_budget(self, requested: object) -> int:
        """The retries a message may use: its own ``x-cargo-max-retries`` (a bridged
        Dramatiq message's ``max_retries``) when it carries a valid one, else the task's."""
        if isinstance(requested, int) and not isinstance(requested, bool) \
                and 0 <= requested <= MAX_RETRY_BUDGET:
            return requested
        return self.max_retries

    def delay(self, retries: int, rand: Callable[[], float] = random.random) -> float:
        return backoff_delay(retries, self.retry_backoff, self.retry_backoff_max, rand)


def backoff_delay(retries: int, base: float, maximum: float,
                  rand: Callable[[], float] = random.random) -> float:
    """Seconds before retry number ``retries + 1``: exponential backoff, "equal jitter".

    The ceiling doubles with each retry (``base * 2**retries``, at most
    ``maximum``); the delay is half the ceiling plus a random share of the other
    half, so retries of many tasks that failed together spread out, and no
    retry comes sooner than half its ceiling.
    """
    ceiling = min(maximum, base * 2.0 ** min(retries, 64))
    return ceiling / 2 + rand() * ceiling / 2


def resolve_policy(name: str, settings: Settings, *, max_retries: int | None = None,
                   retry_backoff: float | None = None, retry_backoff_max: float | None = None,
                   time_limit: float | None = None, memory_mb: int | None = None,
                   non_retryable: tuple[type[BaseException], ...] = ()) -> TaskPolicy:
    """A task's policy from its spec's values (None: default) and the environment."""
    env = settings.task_limits.get(name, TaskLimits())

    def pick(override: Any, spec: Any, default: Any) -> float:
        return float(override if override is not None else spec if spec is not None
                     else default)

    return TaskPolicy(
        max_retries=int(pick(env.max_retries, max_retries, settings.max_retries)),
        retry_backoff=pick(None, retry_backoff, settings.retry_backoff),
        retry_backoff_max=pick(None, retry_backoff_max, settings.retry_backoff_max),
        time_limit=pick(env.time_limit, time_limit, settings.time_limit),
        memory_limit_bytes=int(pick(env.memory_mb, memory_mb, settings.memory_limit_mb) * MIB),
        non_retryable=NON_RETRYABLE + tuple(non_retryable),
    )
