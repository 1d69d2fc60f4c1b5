"""The chaos worker: a real worker that also loads the failing tasks of ``chaos_tasks``.

``python -m tests.support.chaos --concurrency N --hostname NAME`` runs a real
Cargo worker (``workers.runner.run_worker``, prefork) with
``CARGO_TASK_MODULES=workers.builtin,tests.support.chaos_tasks`` (the tasks
are an ordinary module of ``@shared_task`` functions), plus two things a task
module cannot do: SIGUSR2 to its main process freezes its consumer loop (a
stuck worker, for the health probes), and ``succeed_then_kill_worker`` kills
the worker before the ack (a ``task_postrun`` handler).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import click
from celery import signals

from broker.settings import load_settings
from workers.runner import run_worker


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
