"""``cargoctl queues``: the task queues with depth, consumers, dead letters (``GET /queues``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cargoctl.client import gateway_option, token_option
from cargoctl.output import output_option, show_document

if TYPE_CHECKING:
    from rich.console import RenderableType


@click.command()
@output_option
@gateway_option
@token_option
def queues(output: str, gateway: str, token: str | None) -> None:
    """List the task queues: depth, consumers, dead letters.

    The figures are RabbitMQ's statistics (refreshed every few seconds), read
    by the gateway from the management API.
    """

    def table(doc: Any) -> RenderableType:
        from cargoctl.tables import queues_table  # rich: only when drawing (output.py)

        return queues_table(doc)

    show_document(gateway, token, "/queues", output, table)
