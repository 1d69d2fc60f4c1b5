"""Did a task id already succeed? A bounded read of the events stream.

Used only for redelivered messages that the worker's own memory does not know
(``workers.duplicates``): the worker that ran the task may have died between
its ``succeeded`` event and its ack. Synchronous, in the worker's main process,
on a short-lived connection of its own: a stream read ends by closing that
connection (a stream refuses ``basic.nack``), and a redelivery is rare enough
that the connection's cost does not matter.

Bounded three ways, and unsure means "not found" (the task runs: at least once
stays the rule): it starts ``lookback`` seconds ago (the message carries no
submission time), reads at most ``max_messages`` stream messages and stops
after ``deadline`` seconds or once the stream has nothing more for ``idle``
seconds (its end).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import kombu
import structlog

from broker.events import EventDecodeError, TaskState, decode_stream_message
from broker.topology import EVENTS_STREAM

log = structlog.get_logger(__name__)

LOOKBACK_SECONDS = 3600.0
MAX_MESSAGES = 200_000
DEADLINE_SECONDS = 10.0
IDLE_SECONDS = 0.5
PREFETCH = 1000


def succeeded_on_stream(url: str, task_id: str, *, lookback: float = LOOKBACK_SECONDS,
                        max_messages: int = MAX_MESSAGES, deadline: float = DEADLINE_SECONDS,
                        idle: float = IDLE_SECONDS) -> bool:
    """True when the events stream holds a ``succeeded`` event of ``task_id``.

    ``url`` is one broker URL or kombu's failover list of them (``;``-separated).
    """
    found = False
    read = 0
    started = time.monotonic()

    def on_message(message: Any) -> None:
        nonlocal found, read
        read += 1
        offset = (message.headers or {}).get("x-stream-offset")
        try:
            events = decode_stream_message(message.body, offset if isinstance(offset, int) else 0)
        except EventDecodeError:
            events = []
        if any(e.task_id == task_id and e.state is TaskState.SUCCEEDED for e in events):
            found = True
        message.channel.basic_ack(message.delivery_tag)  # stream credit

    try:
        with kombu.Connection(url, connect_timeout=5,
                              failover_strategy="round-robin") as connection:
            # ``url`` may list several nodes (kombu's ``;`` failover form): try each
            # once, quickly, before giving up (a node of the cluster may be down).
            connection.ensure_connection(max_retries=len(url.split(";")), interval_start=0,
                                         interval_step=0, interval_max=1,
                                         timeout=math.ceil(deadline))
            channel: Any = connection.channel()
            channel.basic_qos(0, PREFETCH, False)
            since = datetime.now(UTC) - timedelta(seconds=lookback)
            channel.basic_consume(queue=EVENTS_STREAM, no_ack=False, callback=on_message,
                                  arguments={"x-stream-offset": since})
            while not found and read < max_messages:
                if time.monotonic() - started > deadline:
                    log.warning("events_stream.lookup_stopped", task_id=task_id,
                                seconds=round(deadline, 1), messages=read)
                    break
                try:
                    connection.drain_events(timeout=idle)
                except TimeoutError:
                    break  # nothing more: the end of the stream
    except Exception as exc:  # a broker problem here must not stop the worker
        log.warning("events_stream.lookup_failed", task_id=task_id,
                    error=f"{type(exc).__name__}: {exc}")
        return False
    log.info("events_stream.lookup", task_id=task_id,
             outcome="succeeded" if found else "not found", messages=read,
             seconds=round(time.monotonic() - started, 3))
    return found
