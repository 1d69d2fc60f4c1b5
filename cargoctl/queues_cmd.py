"""``cargoctl queues``: the task queues with depth, consumers, dead letters (``GET /queues``)."""

from __future__ import annotations

import sys

import click

from cargoctl.client import GatewayClient, gateway_option, run_command, token_option
from cargoctl.output import output_option, print_json, print_table


@click.command()
@output_option
@gateway_option
@token_option
def queues(output: str, gateway: str, token: str | None) -> None:
    """List the task queues: depth, consumers, dead letters.

    The figures are RabbitMQ's statistics (refreshed every few seconds), read
    by the gateway from the management API.
    """
    client = GatewayClient(gateway, token)

    async def run() -> int:
        async with client:
            reply = await client.request("GET", "/queues")
        if output == "json":
            print_json(reply.text)
        else:
            from cargoctl.tables import queues_table  # rich: only when drawing (output.py)

            print_table(queues_table(reply.doc))
        return 0

    sys.exit(run_command(run()))
