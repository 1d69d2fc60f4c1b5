"""Holds a process's unconfirmed-by-design events for a moment, so they travel with the next.

A trivial task used to cost two stream messages: ``started`` when it began and
its outcome when it ended. Each stream message is a broker write, a confirm and
a delivery to every gateway, and those were most of a task's cost on the whole
path (``bench/RESULTS.md``, the worker-path benchmark). Events nobody waits for
(``started``, ``progress``, the ``failed`` before a ``retrying``) are therefore
held for up to ``window`` seconds:

- the task's next event that must be confirmed (its outcome) takes them along in
  one stream message (``broker.events.encode_batch``), in their order, so a task
  that finishes within the window costs one message and one confirm;
- otherwise a flusher thread publishes them when the window has passed, so a long
  task's ``started`` and its progress still reach subscribers within one or two
  windows (the flusher is not woken for every held event: it looks once per window).

Nothing is acknowledged earlier than before: the outcome (and what it carries)
is still confirmed before the task's message is acknowledged. A process killed
within the window loses only held events of a task that did not end, which the
broker redelivers (the next run says ``started`` again) or dead-letters (with
its own event). ``window`` 0 publishes every event at once, as before.

The lock is held while a batch is published, so events leave in the order they
happened even when the flusher and the task thread race. State is per process:
a prefork child builds its own (lock, thread) after the fork.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from broker.events import MAX_BATCH, TaskEvent

# Publishes events as one stream message; ``wait``: until confirmed. False: not published.
SendBatch = Callable[[list[TaskEvent], bool], bool]


class _ProcessWindow:
    """The held events of one process and the thread that flushes them late."""

    def __init__(self, window: float, send: SendBatch) -> None:
        self.pid = os.getpid()
        self._window = window
        self._send = send
        self._lock = threading.Condition()
        self._held: list[TaskEvent] = []
        self._due: float | None = None
        self._flusher: threading.Thread | None = None
        # Whether the flusher sleeps with no deadline and must be woken. Otherwise it
        # wakes by itself at an earlier deadline and looks again: a notify per task
        # (a thread switch in every prefork child) measured costly.
        # bench.drain worker CPU/task (~1.5 ms, RESULTS.md): -10 to -15 µs per task (timeit).
        self._idle = False

    def hold(self, event: TaskEvent) -> bool:
        with self._lock:
            self._held.append(event)
            if len(self._held) >= MAX_BATCH:
                return self._flush(wait=False)
            if self._due is None:
                self._due = time.monotonic() + self._window
                if self._flusher is None:
                    self._flusher = threading.Thread(target=self._run, daemon=True,
                                                     name="cargo-event-window")
                    self._flusher.start()
                elif self._idle:
                    self._lock.notify()
            return True

    def send(self, event: TaskEvent, wait: bool) -> bool:
        with self._lock:
            self._held.append(event)
            return self._flush(wait=wait)

    def flush(self) -> bool:
        with self._lock:
            return self._flush(wait=True) if self._held else True

    def _flush(self, wait: bool) -> bool:
        events, self._held, self._due = self._held, [], None
        return self._send(events, wait)

    def _run(self) -> None:
        quiet = False  # a whole window passed with nothing held
        with self._lock:
            while True:
                if self._due is None:
                    if quiet:  # rest until hold() wakes us
                        self._idle = True
                        self._lock.wait()
                        self._idle = False
                        quiet = False
                    else:  # not woken by hold(): a deadline set meanwhile waits < 1 window more
                        self._lock.wait(self._window)
                        quiet = self._due is None
                    continue
                quiet = False
                remaining = self._due - time.monotonic()
                if remaining > 0:
                    self._lock.wait(remaining)
                    continue
                self._flush(wait=False)


class EventWindow:
    """Per-process holding of events that need no confirm (see the module docstring)."""

    def __init__(self, window: float, send: SendBatch) -> None:
        self._window = window
        self._send = send
        self._current: _ProcessWindow | None = None

    def _here(self) -> _ProcessWindow:
        current = self._current
        if current is None or current.pid != os.getpid():
            # A forked child must not share the parent's lock, thread or held events.
            current = self._current = _ProcessWindow(self._window, self._send)
        return current

    def hold(self, event: TaskEvent) -> bool:
        """Keep ``event`` until the next sent event or the window's end."""
        if self._window <= 0:
            return self._send([event], False)
        return self._here().hold(event)

    def send(self, event: TaskEvent, *, wait: bool) -> bool:
        """Publish what is held and ``event``, in one message; ``wait``: until confirmed."""
        if self._window <= 0 and self._current is None:
            return self._send([event], wait)
        return self._here().send(event, wait)

    def flush(self) -> bool:
        """Publish what this process holds and wait for the confirm: a task that ended
        without an event of its own (a rejected or ignored task) must not leave its
        ``started`` to follow what the main process says of it next."""
        current = self._current
        if current is None or current.pid != os.getpid():
            return True
        return current.flush()
