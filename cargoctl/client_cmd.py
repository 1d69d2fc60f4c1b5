"""``cargoctl submit`` and ``cargoctl watch``: the gateway's API for people at a terminal."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
import click

TERMINAL = {"succeeded", "dead_lettered", "revoked"}

gateway_option = click.option(
    "--gateway", envvar="CARGO_GATEWAY_URL", default="http://127.0.0.1:8000", show_default=True,
    help="gateway base URL (env CARGO_GATEWAY_URL)")
token_option = click.option("--token", envvar="CARGO_AUTH_TOKEN", default=None,
                            help="bearer token, when the gateway has auth on")


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _json_arg(value: str, label: str, kind: type) -> Any:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=label) from None
    if not isinstance(parsed, kind):
        raise click.BadParameter(f"must be a JSON {kind.__name__}", param_hint=label)
    return parsed


async def _watch(gateway: str, token: str | None, task_ids: list[str], all_events: bool,
                 timeout: float) -> int:
    url = gateway.replace("http", "ws", 1).rstrip("/") + "/ws"
    pending = set(task_ids)
    async with aiohttp.ClientSession(headers=_headers(token)) as http:
        async with http.ws_connect(url) as ws:
            frame: dict[str, Any] = ({"op": "subscribe", "all": True} if all_events
                                     else {"op": "subscribe", "task_ids": task_ids})
            await ws.send_json(frame)
            async with asyncio.timeout(timeout):
                async for message in ws:
                    doc = json.loads(message.data)
                    if doc.get("type") != "event":
                        continue
                    click.echo(json.dumps(doc))
                    if doc["state"] in TERMINAL:
                        pending.discard(doc["task_id"])
                        if not all_events and not pending:
                            return 0
    return 1


@click.command()
@click.argument("name")
@click.option("--args", "args_json", default="[]", help="JSON list of positional arguments")
@click.option("--kwargs", "kwargs_json", default="{}", help="JSON object of keyword arguments")
@click.option("--countdown", type=float, default=None, help="run no sooner than in N seconds")
@click.option("--wait/--no-wait", default=False, help="stream the task's events until it ends")
@click.option("--timeout", type=float, default=300, show_default=True)
@gateway_option
@token_option
def submit(name: str, args_json: str, kwargs_json: str, countdown: float | None, wait: bool,
           timeout: float, gateway: str, token: str | None) -> None:
    """Submit task NAME through the gateway and print its id."""
    body: dict[str, Any] = {"args": _json_arg(args_json, "--args", list),
                            "kwargs": _json_arg(kwargs_json, "--kwargs", dict)}
    if countdown is not None:
        body["options"] = {"countdown": countdown}

    async def run() -> int:
        async with aiohttp.ClientSession(headers=_headers(token)) as http:
            async with http.post(f"{gateway.rstrip('/')}/tasks/{name}", json=body) as resp:
                doc = await resp.json(content_type=None)
        if resp.status != 202:
            click.echo(f"cargoctl: {resp.status} {json.dumps(doc)}", err=True)
            return 1
        click.echo(doc["task_id"])
        if wait:
            return await _watch(gateway, token, [doc["task_id"]], False, timeout)
        return 0

    sys.exit(_run(run()))


@click.command()
@click.argument("task_ids", nargs=-1)
@click.option("--timeout", type=float, default=3600, show_default=True)
@gateway_option
@token_option
def watch(task_ids: tuple[str, ...], timeout: float, gateway: str, token: str | None) -> None:
    """Print events of TASK_IDS until each ends (every task's events when none given)."""
    sys.exit(_run(_watch(gateway, token, list(task_ids), not task_ids, timeout)))


def _run(coro: Any) -> int:
    try:
        return int(asyncio.run(coro))
    except TimeoutError:
        click.echo("cargoctl: timed out", err=True)
        return 1
    except aiohttp.ClientError as exc:
        click.echo(f"cargoctl: cannot reach the gateway: {exc}", err=True)
        return 1
