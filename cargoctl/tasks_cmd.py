"""``cargoctl tasks show ID``: one task's state, as the gateway knows it (``GET /tasks/{id}``)."""

from __future__ import annotations

import sys

import click

from cargoctl.client import GatewayClient, gateway_option, run_command, segment, token_option
from cargoctl.output import output_option, print_json, print_table


@click.group()
def tasks() -> None:
    """Look up tasks by id."""


@tasks.command()
@click.argument("task_id")
@output_option
@gateway_option
@token_option
def show(task_id: str, output: str, gateway: str, token: str | None) -> None:
    """Show task TASK_ID: state, times, progress, result or error."""
    client = GatewayClient(gateway, token)

    async def run() -> int:
        async with client:
            reply = await client.request("GET", f"/tasks/{segment(task_id)}")
        if output == "json":
            print_json(reply.text)
        else:
            from cargoctl.tables import task_table  # rich: only when drawing (output.py)

            print_table(task_table(reply.doc))
        return 0

    sys.exit(run_command(run()))
