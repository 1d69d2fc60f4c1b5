"""``cargoctl dead-letters list|replay|purge``: the gateway's ``/dead-letters`` at a terminal."""

from __future__ import annotations

import sys
from typing import Any

import click

from cargoctl.client import GatewayClient, gateway_option, run_command, segment, token_option
from cargoctl.output import json_text, output_option, print_json, print_table


@click.group("dead-letters")
def dead_letters() -> None:
    """Inspect, replay and purge dead-lettered tasks (<queue>.XQ)."""


@dead_letters.command("list")
@click.option("--queue", default=None, help="only this task queue's dead letters")
@click.option("--reason", default=None, help="only this reason (failed, memory_limit, ...)")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="entries per page")
@click.option("--all", "all_pages", is_flag=True, help="follow 'next' through every page")
@output_option
@gateway_option
@token_option
def list_(queue: str | None, reason: str | None, limit: int, all_pages: bool, output: str,
          gateway: str, token: str | None) -> None:
    """List dead letters (reading does not remove them).

    --output json prints the gateway's page as it sent it; with --all, one
    document {"items": [...]} holding every page's items.
    """
    params = {k: v for k, v in {"queue": queue, "reason": reason, "limit": str(limit)}.items()
              if v is not None}
    client = GatewayClient(gateway, token)

    async def run() -> int:
        async with client:
            reply = await client.request("GET", "/dead-letters", params=params)
            if not all_pages:
                show(reply.doc, reply.text)
                return 0
            items: list[Any] = list(reply.doc["items"])
            while reply.doc.get("next"):
                reply = await client.request("GET", reply.doc["next"])
                items.extend(reply.doc["items"])
            whole = {"items": items}
            show(whole, json_text(whole))
            return 0

    def show(doc: dict[str, Any], text: str) -> None:
        if output == "json":
            print_json(text)
        else:
            from cargoctl.tables import dead_letters_table  # rich: only when drawing

            print_table(dead_letters_table(doc))

    sys.exit(run_command(run()))


@dead_letters.command()
@click.argument("task_id")
@click.option("--queue", default=None, help="look only in this task queue's dead letters")
@gateway_option
@token_option
def replay(task_id: str, queue: str | None, gateway: str, token: str | None) -> None:
    """Run dead-lettered TASK_ID again (same id) and remove it from the dead letters."""
    params = {"queue": queue} if queue else None
    client = GatewayClient(gateway, token)

    async def run() -> int:
        async with client:
            reply = await client.request("POST", f"/dead-letters/{segment(task_id)}/replay",
                                         params=params, expect=(202,))
        click.echo(reply.doc["task_id"])
        return 0

    sys.exit(run_command(run()))


@dead_letters.command()
@click.option("--queue", required=True, help="the task queue whose dead letters go")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@gateway_option
@token_option
def purge(queue: str, yes: bool, gateway: str, token: str | None) -> None:
    """Delete every dead letter of QUEUE and print how many went."""
    client = GatewayClient(gateway, token)  # a bad URL is said before the question
    if not yes:
        click.confirm(f"Delete every dead letter of {queue!r}?", abort=True)

    async def run() -> int:
        async with client:
            reply = await client.request("DELETE", "/dead-letters", params={"queue": queue})
        click.echo(f"purged {reply.doc['purged']}")
        return 0

    sys.exit(run_command(run()))
