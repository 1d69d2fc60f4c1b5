"""``cargoctl catalog``: the tasks live workers offer (``GET /catalog``)."""

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
def catalog(output: str, gateway: str, token: str | None) -> None:
    """List the tasks live workers offer: queue, arguments, limits."""

    def table(doc: Any) -> RenderableType:
        from cargoctl.tables import catalog_table  # rich: only when drawing (output.py)

        return catalog_table(doc)

    show_document(gateway, token, "/catalog", output, table)
