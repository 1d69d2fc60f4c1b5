"""The chaos worker: a real worker that also loads the failing tasks of ``chaos_tasks``.

``python -m tests.support.chaos --concurrency N --hostname NAME`` runs a real
Cargo worker (``workers.runner.run_worker``, prefork) with
``CARGO_TASK_MODULES=workers.builtin,tests.support.chaos_tasks`` (the tasks
are an ordinary module of ``@shared_task`` functions), plus two things a task
module cannot do: SIGUSR2 to its main process freezes its consumer loop (a
stuck worker, for the health probes), and ``succeed_then_kill_worker`` kills
the worker before the ack, in its main process.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import click

from broker.settings import load_settings
from workers.request import CargoRequest
from workers.runner import run_worker


def kill_worker_before_the_ack() -> None:
    """Make the main process SIGKILL the worker's whole process group (main process
    and children: the worker runs in a session of its own) where it would send the
    ack of a ``succeed_then_kill_worker`` task.

    ``CargoRequest.cargo_ack_now`` runs only once the task's outcome is confirmed
    on the events stream, whoever published it (the child itself, or the main
    process's relay for a task that ended within the merge window), so the worker
    always dies after the outcome is in the stream and before the message is
    acknowledged, every time it runs this task.
    """
    ack_now = CargoRequest.cargo_ack_now

    def ack_or_die(request: CargoRequest) -> None:
        # time_start: it ran here (a duplicate is acknowledged without running).
        if request.name == "succeed_then_kill_worker" and request.time_start is not None:
            os.killpg(os.getpgid(0), signal.SIGKILL)
        ack_now(request)

    CargoRequest.cargo_ack_now = ack_or_die  # type: ignore[method-assign,assignment]


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
    kill_worker_before_the_ack()
    settings = load_settings()
    if CHAOS_MODULE not in settings.task_module_names:
        settings = settings.model_copy(update={
            "task_modules": ",".join((*settings.task_module_names, CHAOS_MODULE))})
    sys.exit(run_worker(settings, concurrency, hostname, []))


if __name__ == "__main__":
    main()
