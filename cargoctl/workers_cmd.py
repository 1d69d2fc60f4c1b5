"""``cargoctl workers``: the live workers, their pools and memory (``GET /workers``)."""

from __future__ import annotations

from datetime import UTC, datetime
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
def workers(output: str, gateway: str, token: str | None) -> None:
    """List the live workers: queues, concurrency, memory, last seen.

    Not `cargoctl worker`, which runs one.
    """

    def table(doc: Any) -> RenderableType:
        from cargoctl.tables import workers_table  # rich: only when drawing (output.py)

        # Ages by this machine's clock; last_seen is by the worker's (docs/cli.md).
        return workers_table(doc, datetime.now(UTC))

    show_document(gateway, token, "/workers", output, table)
