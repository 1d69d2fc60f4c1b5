"""Celery's worker bookkeeping (``celery.worker.state``), for the duplicate guard and the relay.

What it touches, written against celery 5.7.0 (pinned in ``pyproject.toml``):
the main process's module-level ``reserved_requests`` (a ``WeakSet`` of the
requests it holds: taken from the broker, not yet finished),
``successful_requests`` (a ``LimitedSet`` of task ids that succeeded) and
``task_ready(request)``, which removes a request from that bookkeeping. Celery
has no public API for any of them.

Why: the duplicate guard (``workers.duplicates``) answers "already taken or
ended here?" from them with a set lookup and a scan of the prefetched requests,
no broker round trip per message (that guard is part of the per-task floor in
bench/RESULTS.md, "Why the drain goal is out of reach"); the event relay
(``workers.event_relay``) hands events over only while enough tasks are held
(bench.e2e at concurrency 2: a lone task's latency p50 1.70x the peer with every
task relayed, 1.38x without; bench/RESULTS.md, "What each change bought").

``tests/unit/test_adapters_celery.py`` fails, naming celery and its version, when
an upgrade changes any of this: re-measure, then update this module.
"""

from __future__ import annotations

from typing import Any

from celery.worker import state

PINNED = {"celery": "5.7.0"}


def held_count() -> int:
    """How many requests this worker holds (reserved and not yet finished)."""
    return len(state.reserved_requests)


def held_elsewhere(request: Any) -> bool:
    """Whether this worker holds another request with the same task id."""
    return any(other.id == request.id and other is not request
               for other in state.reserved_requests)


def succeeded_here(task_id: str) -> bool:
    """Whether Celery recorded ``task_id`` as successful in this process."""
    return task_id in state.successful_requests


def forget_request(request: Any) -> None:
    """Drop a request from Celery's bookkeeping, as Celery does when a task ends."""
    state.task_ready(request)
