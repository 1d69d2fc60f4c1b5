"""Tasks that fail on purpose, as a plain module of Celery shared tasks.

The chaos worker (``tests.support.chaos``) loads it next to Cargo's built-in
module (``CARGO_TASK_MODULES=workers.builtin,tests.support.chaos_tasks``), so
tests drive every failure path through real Celery and RabbitMQ, exactly as a
team's own tasks would run, without putting worker-killing tasks in the
built-in module. Fast retries, so tests see a whole backoff sequence in seconds.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import shared_task
from celery.exceptions import Reject

from workers.policy import PermanentError


@shared_task(name="crash_worker")
def crash_worker() -> None:
    """Kill the process running this task, every time (as a segfault or OOM kill would)."""
    os._exit(1)


# Fast retries: a 0.2 s backoff base (Cargo takes a float; celery-types says int).
@shared_task(name="always_fail", max_retries=2, retry_backoff=0.2,  # type: ignore[call-overload, untyped-decorator]
             retry_backoff_max=1)
def always_fail(message: str = "always fails") -> None:
    raise RuntimeError(message)


@shared_task(name="fail_permanently", max_retries=2,  # type: ignore[call-overload, untyped-decorator]
             retry_backoff=0.2, retry_backoff_max=1)
def fail_permanently(message: str = "cannot succeed") -> None:
    raise PermanentError(message)


@shared_task(name="fail_once", max_retries=0)
def fail_once(marker: str) -> str:
    """Fail the first time (creating ``marker``), succeed once ``marker`` exists."""
    path = Path(marker)
    if not path.exists():
        path.touch()
        raise RuntimeError("the first run fails")
    return "succeeded on a later run"


@shared_task(name="succeed_then_kill_worker")
def succeed_then_kill_worker() -> str:
    """Succeed; ``tests.support.chaos.kill_worker_before_the_ack`` then kills the worker.
    The nap lets the worker's main process see the task held, so that a relay
    threshold of 1 always relays it (``workers.event_relay``)."""
    time.sleep(0.2)
    return "succeeded, then the worker died before the ack"


@shared_task(name="reject_self")
def reject_self() -> None:
    raise Reject("this task rejects its own message", requeue=False)
