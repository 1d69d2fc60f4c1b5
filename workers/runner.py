"""``cargoctl worker``: a Celery worker on the queues of its tasks, in this process."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import cast

import click

from broker.settings import ConfigError, WorkerSettings
from workers.app import create_app
from workers.modules import task_queues
from workers.runtime import runtime_of


def worker_argv(settings: WorkerSettings, concurrency: int, hostname: str | None,
                extra_args: list[str], queues: Iterable[str] | None = None) -> list[str]:
    """The ``celery worker`` command line ``run_worker`` runs.

    ``queues``: what it consumes when ``CARGO_WORKER_QUEUES`` (``--queues``) is unset
    (its tasks' queues); default: the settings' task queue.
    """
    consumed = settings.worker_queue_names or tuple(queues or ()) or (settings.task_queue,)
    argv = [
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        f"--queues={','.join(consumed)}",
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


def with_worker_queues(settings: WorkerSettings, queues: str | None) -> WorkerSettings:
    """``settings`` with ``cargoctl worker --queues a,b`` in place of CARGO_WORKER_QUEUES;
    raises ConfigError for a bad queue name."""
    if not queues:
        return settings
    from broker.topology import check_queue_name

    names = [q.strip() for q in queues.split(",") if q.strip()]
    if not names:
        raise ConfigError("--queues: no queue named")
    for name in names:
        try:
            check_queue_name(name)
        except ValueError as exc:
            raise ConfigError(f"--queues: {name!r}: {exc}") from None
    return settings.model_copy(update={"worker_queues": ",".join(dict.fromkeys(names))})


def run_worker(settings: WorkerSettings, concurrency: int, hostname: str | None,
               extra_args: list[str]) -> int:
    """Run the worker until it shuts down; return its exit code (2: bad configuration,
    e.g. a module of ``CARGO_TASK_MODULES`` that does not import)."""
    try:
        app = create_app(settings)
    except ConfigError as exc:
        print(f"cargoctl worker: {exc}", file=sys.stderr)
        return 2
    runtime = runtime_of(app)
    queues = task_queues(runtime.tasks) if runtime is not None else ()
    # celery-types declares start() NoReturn, but Celery returns the worker's
    # exit code from it (worker_main() would drop it).
    start = cast(Callable[[list[str]], int | None], app.start)
    try:
        code = start(worker_argv(settings, concurrency, hostname, extra_args, queues))
    except click.ClickException as exc:  # a bad extra argument: say so like the CLI would
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return 1
    return code or 0
