"""Celery's remote-control broadcast, for revoking tasks from outside Celery.

Celery workers listen on kombu's pidbox mailbox ``celery``: a transient fanout
exchange ``celery.pidbox`` bound to one queue per worker. A ``revoke``
broadcast adds the task ids to every listening worker's revoked set (a queued
message with such an id is acknowledged unrun when it arrives, and ends
``revoked``) and, with ``terminate``, stops the child running one now. This is
what ``celery control revoke --terminate`` sends, built here without a Celery
app so the gateway can send it on its own AMQP connection.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

# kombu.pidbox.Mailbox("celery"): exchange "<namespace>.pidbox", fanout, not durable.
CONTROL_EXCHANGE = "celery.pidbox"
CONTROL_EXCHANGE_TYPE = "fanout"
CONTROL_CONTENT_TYPE = "application/json"
# The signal a terminated task's child gets: Celery's default for revoke --terminate.
TERMINATE_SIGNAL = "SIGTERM"


def revoke_broadcast(task_ids: Sequence[str], *, terminate: bool = True) -> bytes:
    """The body of a ``revoke`` broadcast to every worker."""
    body: dict[str, Any] = {
        "method": "revoke",
        "arguments": {"task_id": list(task_ids), "terminate": terminate,
                      "signal": TERMINATE_SIGNAL},
        "destination": None,  # every worker
        "pattern": None,
        "matcher": None,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def revoke_headers() -> dict[str, Any]:
    """kombu's pidbox headers: Lamport clock (0: no ordering claim) and no expiry."""
    return {"clock": 0, "expires": 0}
