"""Per-task retry and limit policy: what the catalog says, what the environment overrides.

Pure (no Celery), so the rules are unit-tested on their own:

- A task that raises is retried up to ``max_retries`` times (a message may carry
  its own budget: :meth:`TaskPolicy.retry_budget`), each after an
  exponentially growing delay with jitter (:func:`backoff_delay`), then
  dead-lettered with reason ``failed``. An error that retrying cannot fix
  (:class:`PermanentError`, or ``TypeError`` — bad arguments, a programming
  error — or any type the task's spec lists) goes to the dead-letter queue at once.
- Limits: a hard time limit and a memory limit (growth of the process running
  the task over its size when the task started).

Precedence for each value: ``CARGO_TASK_LIMITS`` for that task name, then the
option the task's decorator set explicitly (``@shared_task(max_retries=5)``:
:func:`policy_from_options`), then the global default setting.

A task that declares Celery's ``autoretry_for`` keeps Celery's own retries
(``celery_autoretry``): Cargo does not retry what escapes them again.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from broker.settings import TaskLimits, WorkerSettings
from broker.topology import MAX_RETRY_BUDGET

MIB = 1024 * 1024


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
    # Celery's soft time limit (None: none), as the task declared it.
    soft_time_limit: float | None = None
    # The task declared ``autoretry_for``: Celery's autoretry decides, Cargo never retries.
    celery_autoretry: bool = False

    @property
    def memory_limit_mb(self) -> int:
        return max(1, self.memory_limit_bytes // MIB)

    def retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, Exception) and not isinstance(exc, self.non_retryable)

    def should_retry(self, exc: BaseException, retries: int, budget: int | None = None) -> bool:
        """Whether the attempt that just failed (``retries`` before it) runs again, within
        ``budget`` retries in all (default: the task's; a message's own: :meth:`retry_budget`)."""
        return self.retryable(exc) and retries < (self.max_retries if budget is None else budget)

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


def resolve_policy(name: str, settings: WorkerSettings, *, max_retries: int | None = None,
                   retry_backoff: float | None = None, retry_backoff_max: float | None = None,
                   time_limit: float | None = None, memory_mb: int | None = None,
                   non_retryable: tuple[type[BaseException], ...] = (),
                   soft_time_limit: float | None = None,
                   celery_autoretry: bool = False) -> TaskPolicy:
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
        soft_time_limit=soft_time_limit,
        celery_autoretry=celery_autoretry,
    )


# Cargo's own option in a task's decorator call: ``@shared_task(cargo_memory_limit_mb=128)``.
MEMORY_OPTION = "cargo_memory_limit_mb"


class InvalidTaskOption(ValueError):
    """A task's decorator option Cargo cannot use (the message names the task and option)."""


def _number(name: str, option: str, value: Any, *, integer: bool = False,
            minimum: float = 0.0, strict_minimum: bool = True) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or (integer and not isinstance(value, int)) \
            or (value <= minimum if strict_minimum else value < minimum):
        kind = "an integer" if integer else "a number"
        bound = f"> {minimum:g}" if strict_minimum else f">= {minimum:g}"
        raise InvalidTaskOption(f"task {name!r}: option {option}={value!r} must be {kind} "
                                f"{bound}")
    return float(value)


def _backoff(name: str, value: Any) -> float | None:
    """Celery's ``retry_backoff``: True means a 1 s base, a number is the base in
    seconds, False (or unset) leaves Cargo's default."""
    if value is True:
        return 1.0
    if value is False or value is None:
        return None
    return _number(name, "retry_backoff", value)


def _exception_types(name: str, option: str, value: Any) -> tuple[type[BaseException], ...]:
    types = tuple(value) if isinstance(value, list | tuple) else (value,) if value else ()
    for kind in types:
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            raise InvalidTaskOption(f"task {name!r}: option {option} must list exception "
                                    f"classes, not {kind!r}")
    return types


def policy_from_options(name: str, options: Mapping[str, Any],
                        settings: WorkerSettings) -> TaskPolicy:
    """A task's policy from the options its decorator set explicitly (Celery keeps them
    in the task class's own ``__dict__``) and the environment.

    Honoured: ``max_retries``, ``retry_backoff``, ``retry_backoff_max``, ``time_limit``,
    ``soft_time_limit``, ``autoretry_for``, ``dont_autoretry_for`` (errors never
    retried) and Cargo's ``cargo_memory_limit_mb``. Raises :class:`InvalidTaskOption`.
    """
    max_retries = options.get("max_retries")
    if "max_retries" in options and (isinstance(max_retries, bool)
                                    or not isinstance(max_retries, int)
                                    or not 0 <= max_retries <= MAX_RETRY_BUDGET):
        # Celery's max_retries=None means "retry forever": never for a Cargo task.
        raise InvalidTaskOption(f"task {name!r}: option max_retries={max_retries!r} must be "
                                f"an integer from 0 to {MAX_RETRY_BUDGET}")
    memory = _number(name, MEMORY_OPTION, options.get(MEMORY_OPTION), integer=True)
    return resolve_policy(
        name, settings,
        max_retries=max_retries,
        retry_backoff=_backoff(name, options.get("retry_backoff")),
        retry_backoff_max=_number(name, "retry_backoff_max", options.get("retry_backoff_max")),
        time_limit=_number(name, "time_limit", options.get("time_limit")),
        soft_time_limit=_number(name, "soft_time_limit", options.get("soft_time_limit")),
        memory_mb=int(memory) if memory is not None else None,
        non_retryable=_exception_types(name, "dont_autoretry_for",
                                       options.get("dont_autoretry_for")),
        celery_autoretry=bool(_exception_types(name, "autoretry_for",
                                               options.get("autoretry_for"))),
    )
