"""The peer of ``bench/bridge.py``: Dramatiq's own worker running the same trivial actor.

``dramatiq bench.peers.dramatiq_peer:setup --processes C --threads 1`` runs it.
``setup`` (called by Dramatiq's CLI in each worker process, never at import)
builds the broker from ``BENCH_DRAMATIQ_URL`` and declares ``calculate_distance``
on ``BENCH_DRAMATIQ_QUEUE``; each call appends its completion time to a file of
its process under ``BENCH_DRAMATIQ_DONE_DIR`` (a few microseconds per message).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker


def setup() -> None:
    broker = RabbitmqBroker(url=os.environ["BENCH_DRAMATIQ_URL"])
    dramatiq.set_broker(broker)
    done = Path(os.environ["BENCH_DRAMATIQ_DONE_DIR"]) / f"{os.getpid()}.done"
    out = done.open("a", buffering=1)

    def calculate_distance(x: float, y: float) -> float:
        result = math.hypot(x, y)
        out.write(f"{time.time()}\n")
        return result

    dramatiq.actor(actor_name="calculate_distance",
                   queue_name=os.environ["BENCH_DRAMATIQ_QUEUE"])(calculate_distance)
