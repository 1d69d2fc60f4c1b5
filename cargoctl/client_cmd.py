"""``cargoctl submit`` and ``cargoctl watch``: the gateway's API for people at a terminal."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any

import click

from cargoctl.client import GatewayClient, gateway_option, run_command, segment, token_option
from cargoctl.errors import BadInput

if TYPE_CHECKING:
    from cargoctl.watching import Sink

# Rows a live table keeps on screen besides its title, header, caption and borders.
LIVE_TABLE_CHROME = 6
# watch_tasks' grace for ids the gateway does not know yet (cargoctl.watching says why).
DEFAULT_UNKNOWN_AFTER = 5.0


def json_argument(value: str, option: str, kind: type) -> Any:
    """``--args``/``--kwargs``: JSON of the given kind, or a one-line usage error."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{option} is not valid JSON ({exc.msg} at line {exc.lineno} column "
                       f"{exc.colno}): {value!r}") from None
    if not isinstance(parsed, kind):
        wanted = "list, such as '[3, 4]'" if kind is list else "object, such as '{\"x\": 3}'"
        raise BadInput(f"{option} must be a JSON {wanted}; got {value!r}")
    return parsed


live_option = click.option(
    "--live/--lines", "live", default=None,
    help="a live table with progress bars, or one JSON line per event "
         "[default: live on a terminal, lines otherwise]")
unknown_after_option = click.option(
    "--unknown-after", type=click.FloatRange(min=0), default=DEFAULT_UNKNOWN_AFTER,
    show_default=True, metavar="SECONDS",
    help="how long an id the gateway does not know may take to appear (another replica's "
         "fresh task) before it is reported unknown")


def make_sink(live: bool | None) -> contextlib.AbstractContextManager[Sink]:
    # Imported here, as rich is by cargoctl.output: not on every cargoctl start.
    from cargoctl.output import stdout_console
    from cargoctl.watching import LineSink, LiveSink

    console = stdout_console()
    if live is None:
        live = sys.stdout.isatty() and not console.is_dumb_terminal
    if not live:
        return contextlib.nullcontext(LineSink())
    return LiveSink(console, max_rows=max(5, console.height - LIVE_TABLE_CHROME))


@click.command()
@click.argument("name")
@click.option("--args", "args_json", default="[]", help="JSON list of positional arguments")
@click.option("--kwargs", "kwargs_json", default="{}", help="JSON object of keyword arguments")
@click.option("--countdown", type=click.FloatRange(min=0), default=None,
              help="run no sooner than in N seconds")
@click.option("--wait/--no-wait", default=False, help="follow the task until it ends")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=300,
              show_default=True, help="seconds --wait follows the task")
@live_option
@gateway_option
@token_option
def submit(name: str, args_json: str, kwargs_json: str, countdown: float | None, wait: bool,
           timeout: float, live: bool | None, gateway: str, token: str | None) -> None:
    """Submit task NAME through the gateway and print its id."""
    body: dict[str, Any] = {"args": json_argument(args_json, "--args", list),
                            "kwargs": json_argument(kwargs_json, "--kwargs", dict)}
    if countdown is not None:
        body["options"] = {"countdown": countdown}
    client = GatewayClient(gateway, token)

    async def run() -> int:
        async with client:
            reply = await client.request("POST", f"/tasks/{segment(name)}", body=body,
                                         expect=(202,))
            task_id = str(reply.doc["task_id"])
            click.echo(task_id)
            if not wait:
                return 0
            from cargoctl.watching import watch_tasks

            with make_sink(live) as sink:
                return await watch_tasks(client, [task_id], sink, timeout=timeout,
                                         unknown_after=DEFAULT_UNKNOWN_AFTER)

    sys.exit(run_command(run()))


@click.command()
@click.argument("task_ids", nargs=-1)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=3600,
              show_default=True, help="seconds to follow before giving up")
@unknown_after_option
@live_option
@gateway_option
@token_option
def watch(task_ids: tuple[str, ...], timeout: float, unknown_after: float, live: bool | None,
          gateway: str, token: str | None) -> None:
    """Follow TASK_IDS until each ends (every task's events when none are given).

    On a terminal: a live table with a progress bar per task. Otherwise (a pipe,
    a file): one JSON line per event, as the gateway sent it. An id the gateway
    does not know is an error (after --unknown-after), not a silent wait.
    """
    client = GatewayClient(gateway, token)

    async def run() -> int:
        from cargoctl.watching import watch_tasks

        async with client:
            with make_sink(live) as sink:
                return await watch_tasks(client, list(task_ids), sink, timeout=timeout,
                                         unknown_after=unknown_after)

    sys.exit(run_command(run()))
