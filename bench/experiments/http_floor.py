"""An experiment: the HTTP floor — an aiohttp app whose POST /distance/ only answers 202.

No broker, no validation: what one aiohttp process on this machine costs per
request before any of the gateway's work. Measure it in the gateway's place::

    python -m bench.submit --targets gateway --no-save \\
        --gateway-cmd '.venv/bin/python -m bench.experiments.http_floor {host} {port}'

``VARIANT_UVLOOP=1`` runs it on uvloop.
"""

from __future__ import annotations

import asyncio
import os
import sys

from aiohttp import web

TASK_ID = "00000000-0000-4000-8000-000000000000"


async def distance(request: web.Request) -> web.Response:
    return web.json_response({"task_id": TASK_ID, "name": "calculate_distance",
                              "state": "queued"}, status=202)


async def readyz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


def main() -> None:
    if os.environ.get("VARIANT_UVLOOP") == "1":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = web.Application()
    app.router.add_post("/distance/", distance)
    app.router.add_get("/readyz", readyz)
    web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), access_log=None, print=None)


if __name__ == "__main__":
    main()
