"""``--output table|json`` for every listing command, and where each goes.

``table`` is for people (rich, sized to the terminal); ``json`` is for scripts:
the gateway's JSON document as it sent it, one document on standard output.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

output_option = click.option(
    "--output", "-o", "output", type=click.Choice(["table", "json"]), default="table",
    show_default=True, help="table for people; json: the gateway's JSON document, unmodified")


def stdout_console() -> Console:
    # rich is imported when something is drawn, not when cargoctl starts: every
    # command is registered at start, the bridge's health probe included.
    from rich.console import Console

    # highlight=False: rich would colour numbers and UUIDs in cells on its own.
    return Console(highlight=False)


def print_table(renderable: RenderableType) -> None:
    stdout_console().print(renderable)


def print_json(text: str) -> None:
    """The document as the gateway sent it (one line per document for ``jq``)."""
    click.echo(text.strip())


def json_text(doc: Any) -> str:
    """A document cargoctl put together (``dead-letters list --all``), written as the
    gateway writes its own."""
    return json.dumps(doc)
