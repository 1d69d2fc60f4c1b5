"""``cargoctl workers``: the live workers, their pools and memory (``GET /workers``)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from cargoctl.client import GatewayClient, gateway_option, run_command, token_option
from cargoctl.output import output_option, print_json, print_table


@click.command()
@output_option
@gateway_option
@token_option
def workers(output: str, gateway: str, token: str | None) -> None:
    """List the live workers: queues, concurrency, memory, last seen.

    Not `cargoctl worker`, which runs one.
    """
    client = GatewayClient(gateway, token)

    async def run() -> int:
        async with client:
            reply = await client.request("GET", "/workers")
        if output == "json":
            print_json(reply.text)
        else:
            from cargoctl.tables import workers_table  # rich: only when drawing (output.py)

            # Ages by this machine's clock; last_seen is by the worker's (docs/cli.md).
            print_table(workers_table(reply.doc, datetime.now(UTC)))
        return 0

    sys.exit(run_command(run()))
