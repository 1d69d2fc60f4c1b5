"""``cargoctl tasks show ID``: one task's state, as the gateway knows it (``GET /tasks/{id}``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cargoctl.client import gateway_option, segment, token_option
from cargoctl.output import output_option, show_document

if TYPE_CHECKING:
    from rich.console import RenderableType


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

    def table(doc: Any) -> RenderableType:
        from cargoctl.tables import task_table  # rich: only when drawing (output.py)

        return task_table(doc)

    show_document(gateway, token, f"/tasks/{segment(task_id)}", output, table)
