"""``cargoctl``: every Cargo process and chore behind one console script."""

from __future__ import annotations

import errno
import sys
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from broker.settings import CargoSettings

S = TypeVar("S", bound="CargoSettings")


def settings_or_exit(kind: type[S]) -> S:
    """The settings ``kind`` of this command's process; a bad variable: one line, exit 2."""
    # Imported here: pydantic costs a probe (`cargoctl worker health`) a fifth of a second.
    from broker.settings import ConfigError, load_settings

    try:
        return load_settings(kind=kind)
    except ConfigError as exc:
        click.echo(f"cargoctl: {exc}", err=True)
        sys.exit(2)


@click.group()
def cli() -> None:
    """Cargo: REST and WebSocket jobs on Celery and RabbitMQ."""


@cli.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="address to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="port to listen on")
def gateway(host: str, port: int) -> None:
    """Serve the REST and WebSocket API."""
    from cargoctl.errors import CliError
    from cargoctl.listen import bind_error_line, listen_problem

    problem = listen_problem(host, port)
    if problem is not None:
        raise CliError(problem)
    from broker.settings import GatewaySettings

    settings = settings_or_exit(GatewaySettings)
    from gateway.app import run

    try:
        run(settings, host=host, port=port)
    except OSError as exc:
        # Taken between the check and the bind (after the broker connected): still one line.
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        raise CliError(bind_error_line(host, port, exc)) from None


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--concurrency", "-c", default=2, show_default=True, type=int,
              help="worker processes")
@click.option("--hostname", "-n", default=None, help="Celery node name")
@click.option("--queues", "-Q", default=None,
              help="comma-separated queues to consume (CARGO_WORKER_QUEUES; default: the "
                   "queues of the loaded tasks)")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(concurrency: int, hostname: str | None, queues: str | None,
           celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker for the tasks of CARGO_TASK_MODULES (extra arguments go to Celery).

    `cargoctl worker health --liveness|--readiness` checks a running worker instead.
    """
    if celery_args[:1] == ("health",):
        from cargoctl.worker_health_cmd import health

        health.main(list(celery_args[1:]), prog_name="cargoctl worker health")
        return
    from broker.settings import ConfigError, WorkerSettings
    from workers.runner import run_worker, with_worker_queues

    try:
        settings = with_worker_queues(settings_or_exit(WorkerSettings), queues)
    except ConfigError as exc:
        click.echo(f"cargoctl: {exc}", err=True)
        sys.exit(2)
    sys.exit(run_worker(settings, concurrency=concurrency, hostname=hostname,
                        extra_args=list(celery_args)))


def _register_subcommands() -> None:
    from cargoctl.bridge_cmd import bridge
    from cargoctl.canary_cmd import canary
    from cargoctl.catalog_cmd import catalog
    from cargoctl.client_cmd import submit, watch
    from cargoctl.deadletters_cmd import dead_letters
    from cargoctl.queues_cmd import queues
    from cargoctl.tasks_cmd import tasks
    from cargoctl.topology_cmd import topology
    from cargoctl.workers_cmd import workers

    for command in (topology, submit, watch, tasks, catalog, queues, workers, dead_letters,
                    canary, bridge):
        cli.add_command(command)


def main() -> None:
    if sys.argv[1:3] == ["worker", "health"]:  # the probe: straight there (and --help works)
        from cargoctl.worker_health_cmd import health

        health.main(sys.argv[3:], prog_name="cargoctl worker health")
        return
    if sys.argv[1:2] != ["worker"]:  # `cargoctl worker` needs no other command's imports
        _register_subcommands()
    cli()


if __name__ == "__main__":
    main()
