"""``cargoctl bridge`` (run the Dramatiq bridge) and ``cargoctl bridge health``."""

from __future__ import annotations

import sys

import click


@click.group("bridge", invoke_without_command=True)
@click.pass_context
def bridge(ctx: click.Context) -> None:
    """Run the Dramatiq bridge: Dramatiq producers' messages run on Cargo's workers.

    `cargoctl bridge health --liveness|--readiness` checks a running bridge instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    from bridge.runner import run_bridge
    from broker.logs import configure_logging
    from broker.settings import BridgeSettings
    from cargoctl.main import settings_or_exit

    settings = settings_or_exit(BridgeSettings)
    configure_logging(settings)
    try:
        run_bridge(settings)
    except ValueError as exc:  # a bridged queue that is Cargo's own
        click.echo(f"cargoctl bridge: {exc}", err=True)
        sys.exit(2)


@bridge.command("health")
@click.option("--liveness", "mode", flag_value="liveness", default=True,
              help="alive: heartbeat recently written (default)")
@click.option("--readiness", "mode", flag_value="readiness",
              help="ready: alive, connected and consuming every bridged queue")
@click.option("--file", "path", default=None,
              help="heartbeat file [default: CARGO_BRIDGE_HEARTBEAT_FILE]")
@click.option("--max-age", type=float, default=None,
              help="seconds before a heartbeat is stale [default: CARGO_BRIDGE_HEARTBEAT_MAX_AGE]")
def health(mode: str, path: str | None, max_age: float | None) -> None:
    """Check this pod's bridge: exit 0 if healthy, 1 (with the reason) if not."""
    from bridge.health import heartbeat_problem
    from broker.settings import BridgeHealthSettings
    from cargoctl.main import settings_or_exit

    settings = settings_or_exit(BridgeHealthSettings)
    path = path or settings.bridge_heartbeat_file
    if not path:
        click.echo("unhealthy: CARGO_BRIDGE_HEARTBEAT_FILE is empty (no heartbeat kept)",
                   err=True)
        sys.exit(1)
    problem = heartbeat_problem(path, max_age or settings.bridge_heartbeat_max_age,
                                readiness=mode == "readiness")
    if problem is not None:
        click.echo(f"{'not ready' if mode == 'readiness' else 'not live'}: {problem}", err=True)
        sys.exit(1)
    click.echo("ok")
