"""``--output table|json`` for every listing command, and where each goes.

``table`` is for people (rich, sized to the terminal); ``json`` is for scripts:
the gateway's JSON document as it sent it, one document on standard output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import click

from cargoctl.client import GatewayClient, run_command

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


def show_document(gateway: str, token: str | None, path: str, output: str,
                  table: Callable[[Any], RenderableType]) -> NoReturn:
    """``GET path`` and print it: the gateway's text for ``json``, else ``table(doc)``;
    exits with the command's status (errors as one line, ``cargoctl.errors``)."""
    client = GatewayClient(gateway, token)

    async def run() -> int:
        async with client:
            reply = await client.request("GET", path)
        if output == "json":
            print_json(reply.text)
        else:
            print_table(table(reply.doc))
        return 0

    sys.exit(run_command(run()))
