"""The chaos worker: a real worker that also loads the failing tasks of ``chaos_tasks``.

``python -m tests.support.chaos --concurrency N --hostname NAME`` runs a real
Cargo worker (``workers.runner.run_worker``, prefork) with
``CARGO_TASK_MODULES=workers.builtin,tests.support.chaos_tasks`` (the tasks
are an ordinary module of ``@shared_task`` functions), plus two things a task
module cannot do: SIGUSR2 to its main process freezes its consumer loop (a
stuck worker, for the health probes), and ``succeed_then_kill_worker`` kills
the worker before the ack (a ``task_postrun`` handler).

``CHAOS_SPECS`` (the same tasks as ``workers.catalog.TaskSpec``) remains only for
``tests.support.bridge`` until the bridge reads the announced catalog.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click
from celery import signals
from celery.exceptions import Reject

from broker.settings import load_settings
from workers.catalog import TaskSpec
from workers.policy import PermanentError
from workers.runner import run_worker


def crash_worker() -> None:
    """Kill the process running this task, every time (as a segfault or OOM kill would)."""
    os._exit(1)


def always_fail(message: str = "always fails") -> None:
    raise RuntimeError(message)


def fail_permanently(message: str = "cannot succeed") -> None:
    raise PermanentError(message)


def fail_once(marker: str) -> str:
    """Fail the first time (creating ``marker``), succeed once ``marker`` exists."""
    path = Path(marker)
    if not path.exists():
        path.touch()
        raise RuntimeError("the first run fails")
    return "succeeded on a later run"


def succeed_then_kill_worker() -> str:
    """Succeed; :func:`kill_worker_before_the_ack` then kills the whole worker."""
    return "succeeded, then the worker died before the ack"


def kill_worker_before_the_ack(sender: Any = None, **_: Any) -> None:
    """``task_postrun`` of ``succeed_then_kill_worker``: SIGKILL to the worker's whole
    process group (main process and children: the worker runs in a session of its own).

    ``task_postrun`` comes after ``task_success``, whose handler returns only once
    the broker confirmed the ``succeeded`` event, and before the child hands the
    result to the main process, which sends the ack: so the worker always dies
    after the task's outcome is on the events stream and before its message is
    acknowledged, every time it runs this task.
    """
    if getattr(sender, "name", None) == "succeed_then_kill_worker":
        os.killpg(os.getpgid(0), signal.SIGKILL)


def reject_self() -> None:
    raise Reject("this task rejects its own message", requeue=False)


# Fast retries so tests see the whole backoff sequence in seconds.
CHAOS_SPECS = (
    TaskSpec("crash_worker", crash_worker),
    TaskSpec("always_fail", always_fail, max_retries=2, retry_backoff=0.2,
             retry_backoff_max=1.0),
    TaskSpec("fail_permanently", fail_permanently, max_retries=2, retry_backoff=0.2,
             retry_backoff_max=1.0),
    TaskSpec("fail_once", fail_once, max_retries=0),
    TaskSpec("reject_self", reject_self),
    TaskSpec("succeed_then_kill_worker", succeed_then_kill_worker),
)


CHAOS_MODULE = "tests.support.chaos_tasks"


def freeze_main_thread(signum: int, frame: object) -> None:
    """SIGUSR2: block the main thread, i.e. the consumer's event loop, for good.

    Only the loop stops (as in a deadlock); the process and its other threads
    (the heartbeat writer, the metrics server) keep running.
    """
    while True:
        time.sleep(3600)


@click.command()
@click.option("--concurrency", default=2, type=int)
@click.option("--hostname", default=None)
def main(concurrency: int, hostname: str | None) -> None:
    signal.signal(signal.SIGUSR2, freeze_main_thread)
    signals.task_postrun.connect(kill_worker_before_the_ack, weak=False)  # inherited by the pool
    settings = load_settings()
    if CHAOS_MODULE not in settings.task_module_names:
        settings = settings.model_copy(update={
            "task_modules": ",".join((*settings.task_module_names, CHAOS_MODULE))})
    sys.exit(run_worker(settings, concurrency, hostname, []))


if __name__ == "__main__":
    main()
