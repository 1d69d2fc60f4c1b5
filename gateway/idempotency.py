"""Idempotent submission: one task per ``Idempotency-Key``, whichever replica is asked.

The contract (API.md, "Idempotent submission"): a repeated key with the same
request returns the first submission's task and publishes nothing; the same key
with a different request is ``422``; a duplicate that arrives while the first is
still unconfirmed is ``409``.

Each replica keeps a bounded table (least recently used dropped first) from a
digest of the key to the request's fingerprint, its task id and where it stands:
``pending`` while the publish waits for its confirm, ``accepted`` once confirmed,
``unknown`` when the publish was written but never confirmed (the task may run).
A replica fills the table from its own submissions and, for every other
replica's, from the ``queued`` announcement on the events stream, which carries
the key's digest and the fingerprint. The task id is a UUIDv5 of the task name
and key (``gateway.tasks_api``), so even a replica that never saw the
announcement but knows the task from the stream answers with the first task.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Any

from broker.events import TaskEvent, TaskState


class Standing(Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    UNKNOWN = "unknown"


@dataclass
class Claim:
    fingerprint: str
    task_id: str
    standing: Standing


class Verdict(Enum):
    PUBLISH = "publish"  # first time (or the last try was not accepted): publish it
    REPLAY = "replay"  # accepted before: answer with the first task, publish nothing
    IN_FLIGHT = "in_flight"  # 409: the first is still waiting for its confirm
    MISMATCH = "mismatch"  # 422: the key was used for a different request


def key_digest(key: str) -> str:
    """What travels on the events stream instead of the client's key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


def fingerprint(name: str, args: list[Any], kwargs: dict[str, Any],
                options: dict[str, Any]) -> str:
    """The request as the gateway understood it (task, validated arguments, options
    other than the key), canonical JSON hashed."""
    doc = json.dumps([name, args, kwargs, options], sort_keys=True, separators=(",", ":"),
                     default=str)
    return hashlib.sha256(doc.encode()).hexdigest()


class IdempotencyKeys:
    def __init__(self, size: int) -> None:
        self._size = size
        self._claims: OrderedDict[str, Claim] = OrderedDict()

    def __len__(self) -> int:
        return len(self._claims)

    def standing(self, digest: str) -> Standing | None:
        claim = self._claims.get(digest)
        return claim.standing if claim is not None else None

    def begin(self, digest: str, print_: str, task_id: str, task_known: bool) -> Verdict:
        """Decide what a submission with this key does; on PUBLISH the key is now
        ``pending`` (call :meth:`settle` with the publish's outcome).

        ``task_known``: the replica already has events of ``task_id`` from the
        stream (a submission some replica accepted, even if its announcement was
        lost or forgotten here).
        """
        claim = self._claims.get(digest)
        if claim is None:
            if task_known:
                return Verdict.REPLAY
            self._put(digest, Claim(print_, task_id, Standing.PENDING))
            return Verdict.PUBLISH
        self._claims.move_to_end(digest)
        if claim.fingerprint != print_:
            return Verdict.MISMATCH
        if claim.standing is Standing.ACCEPTED or task_known:
            claim.standing = Standing.ACCEPTED
            return Verdict.REPLAY
        if claim.standing is Standing.PENDING:
            return Verdict.IN_FLIGHT
        # UNKNOWN and still no sign of the task on the stream: the first copy most
        # likely never reached the queue. Publishing the same task id again is the
        # retry the client asked for; workers skip a task id that already ended
        # (workers.duplicates).
        claim.standing = Standing.PENDING
        return Verdict.PUBLISH

    def settle(self, digest: str, standing: Standing | None) -> None:
        """The publish's outcome: ACCEPTED, UNKNOWN, or None (not accepted: forget
        the key, so that a retry publishes)."""
        claim = self._claims.get(digest)
        if claim is None or claim.standing is not Standing.PENDING:
            return
        if standing is None:
            del self._claims[digest]
        else:
            claim.standing = standing

    def learn(self, event: TaskEvent) -> None:
        """Events-stream observer: another replica's (or our own) announcement."""
        if event.state is not TaskState.QUEUED or event.idempotency_key is None:
            return
        if event.fingerprint is None:
            return
        claim = self._claims.get(event.idempotency_key)
        if claim is None or claim.standing is not Standing.PENDING:
            self._put(event.idempotency_key,
                      Claim(event.fingerprint, event.task_id, Standing.ACCEPTED))

    def _put(self, digest: str, claim: Claim) -> None:
        self._claims[digest] = claim
        self._claims.move_to_end(digest)
        while len(self._claims) > self._size:
            self._claims.popitem(last=False)
