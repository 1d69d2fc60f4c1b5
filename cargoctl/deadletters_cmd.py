"""``cargoctl dead-letters list|replay|purge``: the gateway's ``/dead-letters`` at a terminal."""

from __future__ import annotations

import json
import sys
from typing import Any

import aiohttp
import click

from cargoctl.client_cmd import _headers, _run, gateway_option, token_option


async def _request(method: str, url: str, token: str | None,
                   params: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers=_headers(token)) as http:
        async with http.request(method, url, params=params) as resp:
            return resp.status, await resp.json(content_type=None)


def _fail(status: int, doc: Any) -> int:
    click.echo(f"cargoctl: {status} {json.dumps(doc)}", err=True)
    return 1


@click.group("dead-letters")
def dead_letters() -> None:
    """Inspect, replay and purge dead-lettered tasks (<queue>.XQ)."""


@dead_letters.command("list")
@click.option("--queue", default=None, help="only this task queue's dead letters")
@click.option("--reason", default=None, help="only this reason (failed, memory_limit, ...)")
@click.option("--limit", type=int, default=100, show_default=True, help="entries per page")
@click.option("--all", "all_pages", is_flag=True, help="follow 'next' through every page")
@gateway_option
@token_option
def list_(queue: str | None, reason: str | None, limit: int, all_pages: bool, gateway: str,
          token: str | None) -> None:
    """Print dead letters as JSON lines (reading does not remove them)."""
    base = gateway.rstrip("/")
    params = {k: v for k, v in {"queue": queue, "reason": reason, "limit": str(limit)}.items()
              if v is not None}

    async def run() -> int:
        url: str | None = f"{base}/dead-letters"
        query: dict[str, str] | None = params
        while url is not None:
            status, doc = await _request("GET", url, token, query)
            if status != 200:
                return _fail(status, doc)
            for item in doc["items"]:
                click.echo(json.dumps(item))
            url = f"{base}{doc['next']}" if all_pages and doc.get("next") else None
            query = None
        return 0

    sys.exit(_run(run()))


@dead_letters.command()
@click.argument("task_id")
@click.option("--queue", default=None, help="look only in this task queue's dead letters")
@gateway_option
@token_option
def replay(task_id: str, queue: str | None, gateway: str, token: str | None) -> None:
    """Run dead-lettered TASK_ID again (same id) and remove it from the dead letters."""
    params = {"queue": queue} if queue else None

    async def run() -> int:
        status, doc = await _request(
            "POST", f"{gateway.rstrip('/')}/dead-letters/{task_id}/replay", token, params)
        if status != 202:
            return _fail(status, doc)
        click.echo(doc["task_id"])
        return 0

    sys.exit(_run(run()))


@dead_letters.command()
@click.option("--queue", required=True, help="the task queue whose dead letters go")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@gateway_option
@token_option
def purge(queue: str, yes: bool, gateway: str, token: str | None) -> None:
    """Delete every dead letter of QUEUE and print how many went."""
    if not yes:
        click.confirm(f"Delete every dead letter of {queue!r}?", abort=True)

    async def run() -> int:
        status, doc = await _request("DELETE", f"{gateway.rstrip('/')}/dead-letters", token,
                                     {"queue": queue})
        if status != 200:
            return _fail(status, doc)
        click.echo(f"purged {doc['purged']}")
        return 0

    sys.exit(_run(run()))
