"""The revoke broadcast Cargo builds is the one Celery's own ``control.revoke`` sends."""

from __future__ import annotations

import json
from typing import Any

import celery
import kombu

from broker.control import CONTROL_EXCHANGE, CONTROL_EXCHANGE_TYPE, revoke_broadcast


def celerys_own_revoke(task_id: str) -> Any:
    """What ``app.control.revoke(..., terminate=True)`` publishes, read back off kombu's
    in-memory transport."""
    app = celery.Celery("control-test", broker="memory://")
    app.conf.control_serializer = "json"
    with app.connection_for_write() as connection:
        exchange = kombu.Exchange(CONTROL_EXCHANGE, CONTROL_EXCHANGE_TYPE, durable=False)
        queue = kombu.Queue("listener", exchange, channel=connection.default_channel)
        queue.declare()
        app.control.revoke(task_id, terminate=True, signal="SIGTERM", connection=connection)
        message = queue.get(no_ack=True)
        assert message is not None, "Celery published no revoke on celery.pidbox"
        return message


def test_the_revoke_broadcast_matches_celerys_own_with_the_id_as_a_list() -> None:
    message = celerys_own_revoke("task-1")
    theirs = message.decode()
    ours = json.loads(revoke_broadcast(["task-1"]))
    assert theirs["arguments"]["task_id"] == "task-1"
    theirs["arguments"]["task_id"] = ["task-1"]  # the worker takes a list or one id
    assert {k: theirs[k] for k in ours} == ours
    assert message.content_type == "application/json"


def test_the_revoke_broadcast_goes_to_every_worker_and_terminates() -> None:
    body = json.loads(revoke_broadcast(["a", "b"]))
    assert body["method"] == "revoke"
    assert body["destination"] is None
    assert body["arguments"] == {"task_id": ["a", "b"], "terminate": True, "signal": "SIGTERM"}
