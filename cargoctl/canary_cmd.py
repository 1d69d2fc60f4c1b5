"""``cargoctl canary``: prove the whole path with one real task; exit 0 or 1 with one line."""

from __future__ import annotations

import asyncio
import sys

import click


@click.command()
@click.option("--gateway", "gateway_url", default=None,
              help="the gateway's URL [default: CARGO_GATEWAY_URL]")
@click.option("--timeout", default=30.0, show_default=True, type=float,
              help="seconds allowed for the task's result")
@click.option("--pushgateway", default=None,
              help="push the outcome there [default: CARGO_CANARY_PUSHGATEWAY]")
@click.option("--restart-unhealthy", is_flag=True,
              help="when the check fails, delete worker pods whose heartbeat is stale")
@click.option("--max-restarts", type=int, default=None,
              help="pods deleting at once [default: CARGO_CANARY_MAX_RESTARTS]")
@click.option("--namespace", default=None, help="worker pods' namespace "
              "[default: CARGO_CANARY_NAMESPACE, else the pod's own]")
@click.option("--kube-api", default=None,
              help="Kubernetes API URL without auth, e.g. `kubectl proxy`'s "
                   "[default: in-cluster config, else ~/.kube/config]")
def canary(gateway_url: str | None, timeout: float, pushgateway: str | None,
           restart_unhealthy: bool, max_restarts: int | None, namespace: str | None,
           kube_api: str | None) -> None:
    """Submit calculate_distance through the gateway and wait for its result over the WebSocket."""
    from broker.logs import configure_logging
    from broker.settings import CanarySettings
    from cargoctl.canary import run_canary
    from cargoctl.gateway_url import checked_gateway_url
    from cargoctl.main import settings_or_exit

    settings = settings_or_exit(CanarySettings)
    # The libraries' lines (aiohttp, kubernetes) in Cargo's dialect; the verdict below
    # is the command's answer, not a log line.
    configure_logging(settings)
    gateway = checked_gateway_url(gateway_url or settings.gateway_url)  # else one line, exit 2
    outcome = asyncio.run(run_canary(gateway, timeout, settings.auth_token))
    verdict = "ok" if outcome.ok else "FAILED"
    click.echo(f"canary {verdict}: {outcome.message} ({outcome.seconds:.3f}s)",
               err=not outcome.ok)
    push_url = pushgateway or settings.canary_pushgateway
    if push_url:
        from cargoctl.canary_metrics import push

        try:
            push(push_url, outcome)
        except Exception as exc:
            from broker.settings import mask_passwords  # the Pushgateway URL may carry one

            click.echo(mask_passwords(
                f"canary: could not push to {push_url}: {type(exc).__name__}: {exc}"), err=True)
    if not outcome.ok and restart_unhealthy:
        from cargoctl.restart_unhealthy import core_api, default_namespace
        from cargoctl.restart_unhealthy import restart_unhealthy as restart

        try:
            restart(core_api(kube_api), namespace or settings.canary_namespace
                    or default_namespace(), settings.canary_worker_selector,
                    max_age=settings.worker_heartbeat_max_age,
                    max_restarts=(settings.canary_max_restarts if max_restarts is None
                                  else max_restarts),
                    metrics_port_default=settings.worker_metrics_port,
                    log=lambda line: click.echo(line, err=True))
        except Exception as exc:
            click.echo(f"restart-unhealthy: failed: {type(exc).__name__}: {exc}", err=True)
    sys.exit(0 if outcome.ok else 1)
