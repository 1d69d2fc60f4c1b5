"""What the workers' duplicate guard (workers/duplicates.py) adds per task, on the
normal (not redelivered) path: the check in ``revoked()`` and the bookkeeping at
the ack, against Celery's own ``revoked()``, with the LRU full (100,000 ids) and
``concurrency`` other requests held. Pure CPU in the worker's main process, no
broker. ``python -m bench.experiments.duplicate_guard_cost``
"""

from __future__ import annotations

import sys
import timeit
import uuid

from celery.contrib.testing.mocks import TaskMessage
from celery.worker import state
from celery.worker.request import Request

from broker.settings import load_settings
from workers.app import create_app
from workers.duplicates import REMEMBERED, GuardedRequest, finished_of

ROUNDS = 200_000


def _no_broker(task_id: str) -> bool:
    raise AssertionError("the stream lookup ran on a first delivery")


def main(held: int = 8) -> None:
    app = create_app(load_settings({}))
    task = app.tasks["calculate_distance"]
    finished = finished_of(task)
    assert finished is not None
    for _ in range(REMEMBERED):
        finished.add(str(uuid.uuid4()))
    others = [GuardedRequest(TaskMessage(task.name, id=str(uuid.uuid4())), app=app, task=task)
              for _ in range(held)]
    for other in others:
        state.reserved_requests.add(other)
    message = TaskMessage(task.name, id=str(uuid.uuid4()), args=[3, 4])
    # A first delivery, as RabbitMQ marks it (the mock's own would look redelivered).
    message.delivery_info = {"redelivered": False, "exchange": "cargo.tasks",
                             "routing_key": "cargo"}
    request = GuardedRequest(message, app=app, task=task)
    task.cargo_stream_lookup = _no_broker  # type: ignore[attr-defined]  # never on this path

    def guarded() -> None:
        request._already_revoked = False  # measure the check every round
        request.revoked()

    def plain() -> None:
        Request.revoked(request)

    def bookkeeping() -> None:  # what acknowledge() adds after a success
        if request.id in state.successful_requests:
            finished.add(request.id)

    state.successful_requests.add(request.id)
    results = {}
    for label, fn in (("celery revoked()", plain), ("guarded revoked()", guarded),
                      ("ack bookkeeping", bookkeeping)):
        seconds = min(timeit.repeat(fn, number=ROUNDS, repeat=5)) / ROUNDS
        results[label] = seconds
        print(f"{label:>20}: {seconds * 1e6:.2f} µs per task")
    extra = results["guarded revoked()"] - results["celery revoked()"] + results["ack bookkeeping"]
    print(f"{'guard adds':>20}: {extra * 1e6:.2f} µs per task "
          f"(LRU {len(finished)} ids, {held} requests held)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
