"""Celery's worker bookkeeping (``celery.worker.state``), for the duplicate guard and the relay.

What it touches, written against celery 5.7.0 (pinned in ``pyproject.toml``):
the main process's module-level ``reserved_requests`` (a ``WeakSet`` of the
requests it holds: taken from the broker, not yet finished),
``active_requests`` (those a pool process runs), ``successful_requests`` (a
``LimitedSet`` of task ids that succeeded), ``should_stop`` (set when a warm
shutdown was asked for) and ``task_ready(request)``, which removes a request
from that bookkeeping. Celery has no public API for any of them.

Why: the duplicate guard (``workers.duplicates``) answers "already taken or
ended here?" from them with a set lookup and a scan of the prefetched requests,
no broker round trip per message (that guard is part of the per-task floor in
bench/RESULTS.md, "Why the drain goal is out of reach"); the event relay
(``workers.event_relay``) hands events over only while enough tasks are held
(bench.e2e at concurrency 2: a lone task's latency p50 1.70x the peer with every
task relayed, 1.38x without; bench/RESULTS.md, "What each change bought"); the memory guard
(``workers.guard``) checks the tasks that are running and keeps checking them
through a warm shutdown, and the heartbeat (``workers.heartbeat``) reports how
many run.

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


def running_requests() -> list[Any]:
    """The requests a pool process runs now (a copy; empty if it changed while copied,
    the caller's next check sees it)."""
    try:
        return list(state.active_requests)
    except RuntimeError:  # changed size while copying
        return []


def running_count() -> int:
    """How many requests a pool process runs now."""
    return len(state.active_requests)


def warm_shutdown_requested() -> bool:
    """Celery's own test (``state.maybe_shutdown``): the exit code may be 0."""
    return state.should_stop is not None and state.should_stop is not False
