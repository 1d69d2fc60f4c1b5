"""An experiment, not a product: run Cargo's gateway with parts of its hot path changed.

Used with ``python -m bench.submit --gateway-cmd`` to find out what a request
costs and where; see ``bench/RESULTS.md``. It patches the gateway's internals
from outside, so it may stop working when the gateway changes. Switches, read
from the environment of the benchmark run:

* ``VARIANT_NO_ANNOUNCE=1`` — skip the ``queued`` events the gateway announces
  (in batches) after 202s (and so also its delivery back to every gateway through the
  events stream);
* ``VARIANT_ASYNCIO=1`` — run on asyncio's own loop instead of uvloop;
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
    from broker.announcer import Announcer
    from broker.settings import load_settings

    if os.environ.get("VARIANT_NO_ANNOUNCE") == "1":
        def no_announce(self: Any, event: Any) -> None:
            return None

        Announcer.announce = no_announce  # type: ignore[method-assign]
    if os.environ.get("VARIANT_ASYNCIO") == "1":  # the gateway picks uvloop by itself
        gateway_app.new_event_loop = asyncio.new_event_loop
    if os.environ.get("VARIANT_NOGC") == "1":
        gc.disable()
    gateway_app.run(load_settings(), host=sys.argv[1], port=int(sys.argv[2]))


if __name__ == "__main__":
    main()
