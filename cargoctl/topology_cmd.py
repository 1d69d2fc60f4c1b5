"""``cargoctl topology declare|export``: Cargo's RabbitMQ topology, on a broker or as a file.

``declare`` connects to ``RABBITMQ_URL`` and declares every exchange, queue and
binding that :func:`broker.topology.build_topology` names (a no-op when they
already exist with the same arguments). ``export`` writes the same topology as
a RabbitMQ definitions document for the management UI or
``POST /api/definitions/{vhost}``; it needs no broker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import aiormq.exceptions
import click

from broker.addresses import AddressRotation
from broker.declare import declare_topology
from broker.definitions import export_definitions
from broker.logs import configure_logging
from broker.settings import BrokerSettings
from broker.topology import QueueSpec, Topology, build_topology
from cargoctl.main import settings_or_exit


class DeclareError(RuntimeError):
    """The topology could not be declared; the message says why, for a person."""


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{userinfo}:***@{netloc[1]}", parts.path, parts.query,
                       parts.fragment))


def _describe(exc: BaseException) -> str:
    text = str(exc.args[-1]) if isinstance(exc, OSError) and exc.args else str(exc)
    return text or type(exc).__name__


async def _connect(settings: BrokerSettings, timeout: float) -> aio_pika.abc.AbstractConnection:
    """Connect, retrying refused or dropped connections until ``timeout`` has passed."""
    addresses = AddressRotation(settings.rabbitmq_urls)  # several: one cluster's nodes
    deadline = time.monotonic() + timeout
    while True:
        where = redacted(addresses.current)
        user = urlsplit(addresses.current).username or "guest"
        remaining = deadline - time.monotonic()
        try:
            return await aio_pika.connect(
                addresses.current,
                timeout=max(0.1, min(settings.connect_timeout, remaining)),
                client_properties={"connection_name": "cargoctl topology declare"},
            )
        except aiormq.exceptions.ProbableAuthenticationError:
            raise DeclareError(f"RabbitMQ at {where} refused the login of user {user!r}; "
                               f"check the credentials in RABBITMQ_URL") from None
        except aiormq.exceptions.AMQPConnectionError as exc:
            last = _describe(exc)
            addresses.failed()
        except aiormq.exceptions.AMQPError:
            # RabbitMQ closes the connection while opening it when the vhost is
            # missing or the user may not use it.
            raise DeclareError(
                f"RabbitMQ at {where} closed the connection while opening it; "
                f"usually vhost {settings.vhost!r} does not exist or user {user!r} has no "
                f"permissions on it (scripts/rabbitmq.sh creates it on a local broker)"
            ) from None
        except (OSError, TimeoutError) as exc:
            last = _describe(exc) if str(exc) else "connection timed out"
            addresses.failed()
        if time.monotonic() >= deadline:
            raise DeclareError(f"RabbitMQ at {where} is unreachable after {timeout:g}s: {last}. "
                               f"Is it running? (scripts/rabbitmq.sh starts a local one)")
        await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


async def _declare(settings: BrokerSettings, topology: Topology, timeout: float,
                   replace_outdated: bool = False) -> list[str]:
    """Declare; returns the outdated watch queues left as they are (none once replaced)."""
    connection = await _connect(settings, timeout)
    try:
        channel = await connection.channel()
        outdated = await declare_topology(channel, topology)
        if outdated and replace_outdated:
            # A watch queue holds only notices of dead letters (which stay in
            # <queue>.XQ): deleting it loses at most notices not yet announced.
            for name in outdated:
                await channel.queue_delete(name)
            outdated = await declare_topology(channel, topology)
        return outdated
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise DeclareError(
            f"RabbitMQ refused a declaration: {_describe(exc)}. An exchange or queue of that "
            f"name already exists with other arguments; RabbitMQ never changes them in place "
            f"(see README, Topology, for how to migrate)"
        ) from None
    except aiormq.exceptions.AMQPError as exc:
        raise DeclareError(f"RabbitMQ refused a declaration: {_describe(exc)}") from None
    finally:
        await connection.close()


def _queue_line(spec: QueueSpec) -> str:
    bindings = ", ".join(f"{b.exchange} [{b.routing_key}]" for b in spec.bindings)
    line = f"  queue    {spec.name} ({spec.queue_type}) <- {bindings}"
    args = " ".join(f"{k}={v}" for k, v in spec.arguments.items() if k != "x-queue-type")
    return f"{line}\n           {args}" if args else line


@click.group()
def topology() -> None:
    """Declare Cargo's RabbitMQ topology, or export it as definitions JSON."""


@topology.command()
@click.option("--timeout", default=10.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="seconds to keep trying to reach the broker before giving up")
@click.option("--replace-outdated-watch-queues", "replace_outdated", is_flag=True,
              help="delete and declare again each <queue>.XQ.watch that an older Cargo "
                   "declared with other arguments (it holds only notices)")
def declare(timeout: float, replace_outdated: bool) -> None:
    """Declare every exchange, queue and binding on RABBITMQ_URL (idempotent)."""
    settings = settings_or_exit(BrokerSettings)
    spec = build_topology(settings)
    configure_logging(settings)  # before the levels below: they apply to its loggers
    # aiormq logs each failed connection attempt; the one message below says it all.
    for name in ("aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    # An outdated watch queue is reported below, with what to do, once.
    logging.getLogger("broker.declare").setLevel(logging.ERROR)
    try:
        outdated = asyncio.run(_declare(settings, spec, timeout, replace_outdated))
    except DeclareError as exc:
        click.echo(f"cargoctl topology declare: {exc}", err=True)
        sys.exit(1)
    where = ", ".join(map(redacted, settings.rabbitmq_urls))
    click.echo(f"declared on {where} (vhost {settings.vhost!r}):")
    for ex in spec.exchanges:
        click.echo(f"  exchange {ex.name} ({ex.type})")
    for queue in spec.queues:
        click.echo(_queue_line(queue))
    for name in outdated:
        click.echo(f"cargoctl topology declare: {name} was declared by an older Cargo with "
                   f"other arguments (no x-delivery-limit) and is used as it is; run again "
                   f"with --replace-outdated-watch-queues to recreate it", err=True)


@topology.command()
@click.option("--vhost", default=None, metavar="NAME",
              help="name this vhost in every object and add it to 'vhosts' (a full-broker "
                   "import, POST /api/definitions); default: a vhost-scoped document for "
                   "POST /api/definitions/{vhost}")
@click.option("-o", "--output", default="-", show_default=True,
              type=click.Path(dir_okay=False, writable=True, allow_dash=True),
              help="file to write; - for standard output")
def export(vhost: str | None, output: str) -> None:
    """Write the topology as RabbitMQ definitions JSON (no broker needed)."""
    if vhost is not None and not vhost:
        raise click.BadParameter("must not be empty", param_hint="--vhost")
    document = export_definitions(build_topology(settings_or_exit(BrokerSettings)), vhost=vhost)
    with click.open_file(output, "w") as out:
        out.write(json.dumps(document, indent=2) + "\n")
    if output != "-":
        click.echo(f"wrote definitions for {len(document['exchanges'])} exchanges, "
                   f"{len(document['queues'])} queues and {len(document['bindings'])} bindings "
                   f"to {output}", err=True)
