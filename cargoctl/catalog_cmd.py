"""``cargoctl catalog``: the tasks live workers offer (``GET /catalog``)."""

from __future__ import annotations

import sys

import click

from cargoctl.client import GatewayClient, gateway_option, run_command, token_option
from cargoctl.output import output_option, print_json, print_table


@click.command()
@output_option
@gateway_option
@token_option
def catalog(output: str, gateway: str, token: str | None) -> None:
    """List the tasks live workers offer: queue, arguments, limits."""
    client = GatewayClient(gateway, token)

    async def run() -> int:
        async with client:
            reply = await client.request("GET", "/catalog")
        if output == "json":
            print_json(reply.text)
        else:
            from cargoctl.tables import catalog_table  # rich: only when drawing (output.py)

            print_table(catalog_table(reply.doc))
        return 0

    sys.exit(run_command(run()))
