"""The memory guard: stop a task whose process grows past its memory limit.

Runs in the worker's main process, on the consumer's event-loop timer (the
thread that owns the messages), every ``CARGO_MEMORY_CHECK_INTERVAL`` seconds
(0.1 by default). For every running task it reads the resident memory of the
prefork child running it; once the growth over the child's size when it
accepted the task passes the task's memory limit
(``CARGO_TASK_LIMITS``/``CARGO_MEMORY_LIMIT_MB``), the guard

1. kills the child (SIGKILL: the leak stops at once),
2. dead-letters the task's original message with reason ``memory_limit`` and
   the measured growth, then acknowledges it,
3. emits ``failed`` and ``dead_lettered`` events.

Celery's pool forks a replacement child and the worker goes on serving; the
killed child's ``WorkerLostError`` that Celery reports later only marks the
request done (see ``workers.request``). If the dead-letter publish fails, the
message is not acknowledged: RabbitMQ redelivers it, and past the delivery
limit dead-letters it itself.

Celery's ``worker_max_memory_per_child`` stays a backstop for memory a task
leaves behind after it returns (it only acts between tasks).

During a warm shutdown (SIGTERM) Celery stops the consumer, and with it this
step's timer, before it waits for the running tasks: a task leaking then would
grow unchecked until it ended or the pod was killed. So the step hands over to a
small thread (:class:`DrainGuard`) that goes on checking until no task runs. It
only kills the child: acknowledging or dead-lettering from that thread would
write on the consumer's channel, which the main thread is still using to
acknowledge finishing tasks. The killed child's message is requeued
(``task_reject_on_worker_lost``) and the next worker's guard dead-letters it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Any

import structlog
from celery import bootsteps
from celery.worker import state
from celery.worker.state import active_requests

from broker.deadletter import Reason
from broker.events import TaskState
from workers.request import CargoRequest
from workers.rss import rss_of
from workers.runtime import CargoRuntime, runtime_of

log = structlog.get_logger(__name__)

MIB = 1024 * 1024


def peak_rss(pid: int) -> int | None:
    """The process's peak resident memory so far (Linux ``VmHWM``), in bytes."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class MemoryGuard:
    """Checks running tasks' memory and stops those past their limit."""

    def __init__(self, runtime: CargoRuntime, *, dead_letter: bool = True) -> None:
        self._runtime = runtime
        self._dead_letter = dead_letter

    def check(self) -> None:
        try:
            requests = list(active_requests)
        except RuntimeError:  # changed size while copying; next tick
            return
        largest = 0
        for request in requests:
            if not isinstance(request, CargoRequest) or request.cargo_dead_lettered:
                continue
            pid: Any = request.worker_pid
            baseline = request.cargo_baseline_rss
            if not isinstance(pid, int) or baseline is None or pid == os.getpid():
                continue  # not a prefork child (solo/thread pools are not guarded)
            rss = rss_of(pid)
            if rss is None:
                continue
            largest = max(largest, rss)
            limit = self._runtime.memory_limit(request.name)
            if rss - baseline > limit:
                self.stop(request, pid, baseline, rss, limit)
        self._runtime.metrics.child_memory.set(largest)

    def stop(self, request: CargoRequest, pid: int, baseline: int, rss: int, limit: int) -> None:
        peak = max(peak_rss(pid) or rss, rss)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        growth = peak - baseline
        error = {
            "type": "MemoryLimitExceeded",
            "message": (f"grew by {growth / MIB:.1f} MiB (from {baseline / MIB:.1f} MiB), "
                        f"past its memory limit of {limit / MIB:.1f} MiB"),
        }
        if not self._dead_letter:
            # Shutting down: the message goes back to the queue, not to the dead letters.
            log.error("memory_guard.stopped_while_shutting_down", task_name=request.name,
                      task_id=request.id, pid=pid, error=error["message"])
            return
        log.error("memory_guard.stopped", task_name=request.name, task_id=request.id,
                  pid=pid, error=error["message"])
        if request.cargo_dead_letter(Reason.MEMORY_LIMIT, error):
            # Celery never reports this run as failed (the child was killed): count it.
            request.cargo_count("failed", error["type"])
            request.cargo_emit(TaskState.FAILED, error=error)
            request.cargo_emit(TaskState.DEAD_LETTERED, Reason.MEMORY_LIMIT, error)


class MemoryGuardStep(bootsteps.StartStopStep):
    """Runs the memory guard on the consumer's timer while the consumer runs."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._entry: Any = None

    def start(self, parent: Any) -> None:
        runtime = runtime_of(parent.app)
        if runtime is None or parent.timer is None:
            return
        guard = MemoryGuard(runtime)
        self._entry = parent.timer.call_repeatedly(
            runtime.settings.memory_check_interval, guard.check)

    def stop(self, parent: Any) -> None:
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None
        runtime = runtime_of(parent.app)
        # Celery's own test (state.maybe_shutdown): the exit code may be 0.
        shutting_down = state.should_stop is not None and state.should_stop is not False
        if runtime is not None and shutting_down and active_requests:
            DrainGuard(MemoryGuard(runtime, dead_letter=False),
                       runtime.settings.memory_check_interval).start()

    def shutdown(self, parent: Any) -> None:
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None


class DrainGuard(threading.Thread):
    """Checks running tasks' memory while a warm shutdown waits for them, until none runs."""

    def __init__(self, guard: MemoryGuard, interval: float) -> None:
        super().__init__(name="cargo-memory-guard-drain", daemon=True)
        self._guard = guard
        self._interval = interval

    def run(self) -> None:
        log.info("memory_guard.watching_until_shutdown")
        while active_requests:
            self._guard.check()
            time.sleep(self._interval)
