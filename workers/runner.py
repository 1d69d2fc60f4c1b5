"""``cargoctl worker``: a Celery worker on Cargo's task queue, in this process."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

import click

from broker.settings import Settings
from workers.app import create_app
from workers.catalog import TaskSpec


def worker_argv(settings: Settings, concurrency: int, hostname: str | None,
                extra_args: list[str]) -> list[str]:
    """The ``celery worker`` command line ``run_worker`` runs."""
    argv = [
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        f"--queues={settings.task_queue}",
        f"--loglevel={settings.log_level}",
        # Mingle asks every other worker for its revoked ids and clock at start
        # (a broadcast and a wait on every start, i.e. on every KEDA scale-up);
        # gossip has every worker consume every other worker's heartbeats, which
        # grows with the square of the worker count. Cargo uses neither: task
        # state travels on the events stream.
        "--without-mingle",
        "--without-gossip",
    ]
    if hostname:
        argv.append(f"--hostname={hostname}")
    # Last, so an operator's option overrides ours (click keeps the last value).
    return [*argv, *extra_args]


def run_worker(settings: Settings, concurrency: int, hostname: str | None,
               extra_args: list[str], extra_specs: Iterable[TaskSpec] = ()) -> int:
    """Run the worker until it shuts down; return its exit code.

    ``extra_specs`` are tasks offered besides the catalog (tests use it).
    """
    app = create_app(settings, extra_specs)
    # celery-types declares start() NoReturn, but Celery returns the worker's
    # exit code from it (worker_main() would drop it).
    start = cast(Callable[[list[str]], int | None], app.start)
    try:
        code = start(worker_argv(settings, concurrency, hostname, extra_args))
    except click.ClickException as exc:  # a bad extra argument: say so like the CLI would
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return 1
    return code or 0
