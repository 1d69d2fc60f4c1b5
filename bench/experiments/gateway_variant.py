"""An experiment, not a product: run Cargo's gateway with parts of its hot path changed.

Used with ``python -m bench.submit --gateway-cmd`` to find out what a request
costs and where; see ``bench/RESULTS.md``. It patches the gateway's internals
from outside, so it may stop working when the gateway changes. Switches, read
from the environment of the benchmark run:

* ``VARIANT_NO_ANNOUNCE=1`` — skip the ``queued`` event the gateway publishes
  after every 202 (and so also its delivery back to every gateway through the
  events stream);
* ``VARIANT_UVLOOP=1`` — run aiohttp on uvloop instead of asyncio's loop;
* ``VARIANT_NOGC=1`` — disable the cyclic garbage collector (a diagnosis of
  latency tails, not a fix).

    python -m bench.submit --targets gateway --rounds 3 \\
        --gateway-cmd '.venv/bin/python -m bench.experiments.gateway_variant {host} {port}'
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from typing import Any


def main() -> None:
    import gateway.app as gateway_app
    import gateway.tasks_api as tasks_api
    from broker.settings import load_settings

    if os.environ.get("VARIANT_NO_ANNOUNCE") == "1":
        def no_announce(app: Any, event: Any) -> None:
            return None

        tasks_api._announce = no_announce
    if os.environ.get("VARIANT_UVLOOP") == "1":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if os.environ.get("VARIANT_NOGC") == "1":
        gc.disable()
    gateway_app.run(load_settings(), host=sys.argv[1], port=int(sys.argv[2]))


if __name__ == "__main__":
    main()
