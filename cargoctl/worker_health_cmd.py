"""``cargoctl worker health --liveness|--readiness``: the worker probes, from its heartbeat file.

Exits 0 when healthy, 1 with a one-line reason on standard error otherwise
(2 for a configuration error). No broker round trip, no broadcast: it reads
one small file the worker's main process keeps fresh (``workers.heartbeat``).
"""

from __future__ import annotations

import sys

import click


@click.command("health")
@click.option("--liveness", "mode", flag_value="liveness", default=True,
              help="alive: heartbeat written, consumer loop not stuck (default)")
@click.option("--readiness", "mode", flag_value="readiness",
              help="ready: alive and connected to the broker")
@click.option("--file", "path", default=None,
              help="heartbeat file [default: CARGO_WORKER_HEARTBEAT_FILE]")
@click.option("--max-age", type=float, default=None,
              help="seconds before a heartbeat is stale [default: CARGO_WORKER_HEARTBEAT_MAX_AGE]")
def health(mode: str, path: str | None, max_age: float | None) -> None:
    """Check this pod's worker: exit 0 if healthy, 1 (with the reason) if not."""
    from workers.health import heartbeat_problem

    if path is None or max_age is None:
        # Both given (the chart's probes pass them): no configuration to load, which
        # keeps the probe at a few tens of milliseconds of CPU.
        from broker.settings import WorkerHealthSettings
        from cargoctl.main import settings_or_exit

        settings = settings_or_exit(WorkerHealthSettings)
        path = settings.worker_heartbeat_file if path is None else path
        max_age = settings.worker_heartbeat_max_age if max_age is None else max_age
    if not path:
        click.echo("unhealthy: CARGO_WORKER_HEARTBEAT_FILE is empty (no heartbeat kept)",
                   err=True)
        sys.exit(1)
    problem = heartbeat_problem(path, max_age, readiness=mode == "readiness")
    if problem is not None:
        click.echo(f"{'not ready' if mode == 'readiness' else 'not live'}: {problem}", err=True)
        sys.exit(1)
    click.echo("ok")
