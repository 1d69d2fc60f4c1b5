"""Why a task ran (or reported) twice, read from its own events on the stream.

Each duplicate of a chaos run gets one cause, from the order of its events
(stream order, by cursor) and from whether the worker that ran the first attempt
was SIGKILLed by the benchmark:

- ``rerun after its success was on the stream``: a second ``started`` follows a
  ``succeeded``. The redelivery should have been recognised (``workers.duplicates``):
  a gap in the duplicate guard (told apart: the first worker SIGKILLed before its
  ack, or alive but cut from its broker node).
- ``rerun: the first attempt's worker was SIGKILLed before its outcome``: no outcome
  before the second ``started``; the worker died mid-task. At-least-once delivery
  working as designed.
- ``rerun: the first attempt ended without an outcome, its worker lived``: no outcome
  before the second ``started`` and the worker was not killed: it lost its broker
  connection mid-task (Celery then cancels the unacknowledged task, and the broker
  delivers it again). At least once, as designed.
- ``one outcome published twice``: one ``started``, the same terminal event twice
  (same state, time and worker): a worker re-published an event whose confirm it
  had lost. Not a second run.
- ``two outcomes of one start``: anything else with more than one terminal event.
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.events import TaskEvent, TaskState

TERMINAL = frozenset({TaskState.SUCCEEDED, TaskState.DEAD_LETTERED, TaskState.REVOKED})

RERUN_AFTER_SUCCESS = "rerun after its success was on the stream"
KILLED_AFTER_SUCCESS = RERUN_AFTER_SUCCESS + " (first worker SIGKILLed before its ack)"
LIVED_AFTER_SUCCESS = RERUN_AFTER_SUCCESS + " (first worker lived: lost its connection)"
RERUN_WORKER_KILLED = "rerun: the first attempt's worker was SIGKILLed before its outcome"
RERUN_WORKER_LIVED = "rerun: the first attempt ended without an outcome, its worker lived"
OUTCOME_REPUBLISHED = "one outcome published twice"
TWO_OUTCOMES = "two outcomes of one start"


def _killed(hostname: str | None, killed_prefixes: Iterable[str]) -> bool:
    return hostname is not None and any(hostname.startswith(p) for p in killed_prefixes)


def cause_of(events: list[TaskEvent], killed_prefixes: Iterable[str]) -> str | None:
    """The cause of a task's duplicate run or report; None when it has none."""
    ordered = sorted(events, key=lambda e: -1 if e.cursor is None else e.cursor)
    starts = [i for i, e in enumerate(ordered) if e.state is TaskState.STARTED]
    outcomes = [e for e in ordered if e.state in TERMINAL]
    if len(starts) > 1:
        before = ordered[:starts[1]]
        killed = _killed(ordered[starts[0]].hostname, killed_prefixes)
        if any(e.state is TaskState.SUCCEEDED for e in before):
            return KILLED_AFTER_SUCCESS if killed else LIVED_AFTER_SUCCESS
        if killed:
            return RERUN_WORKER_KILLED
        return RERUN_WORKER_LIVED
    if len(outcomes) > 1:
        first, *rest = ((e.state, e.ts, e.hostname) for e in outcomes)
        return OUTCOME_REPUBLISHED if all(r == first for r in rest) else TWO_OUTCOMES
    return None
