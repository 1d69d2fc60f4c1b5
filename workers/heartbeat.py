"""The worker's heartbeat: cheap liveness and readiness without ``celery inspect ping``.

``celery inspect ping`` broadcasts to every worker through the broker and waits
for their replies: seconds of CPU per probe, and it fails for every worker at
once when the broker does. Cargo's worker instead proves itself locally:

- the **consumer loop** (the main thread's event loop that takes messages,
  acknowledges them and runs the memory guard) stamps ``loop_at`` on every tick
  of its timer (:class:`HeartbeatStep`, a consumer bootstep). A loop that is
  blocked or deadlocked stops stamping.
- the consumer bootstep is started when the consumer has connected and
  stopped when Celery tears the connection down to reconnect, so ``connected``
  says whether the worker can take tasks;
- a small **writer thread** of the main process writes both, with its own time,
  to ``CARGO_WORKER_HEARTBEAT_FILE`` every ``CARGO_WORKER_HEARTBEAT_INTERVAL``
  seconds (atomically: a temporary file renamed over it), inside
  ``with heartbeat.writing():``; leaving it removes the file.

``cargoctl worker health --liveness|--readiness`` reads that file
(:mod:`workers.health`); the Kubernetes probes run it. The same state is on the
worker's ``/metrics`` (``cargo_worker_heartbeat_timestamp_seconds``,
``celery_worker_up``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog
from celery import bootsteps

from broker.heartbeat_file import write_heartbeat_file
from workers.celery_state_adapter import running_count
from workers.metrics import WorkerMetrics
from workers.runtime import runtime_of

log = structlog.get_logger(__name__)


class Heartbeat:
    """The heartbeat state of one worker process and the thread that writes it."""

    def __init__(self, path: str, interval: float, max_age: float,
                 metrics: WorkerMetrics | None = None) -> None:
        self.path = Path(path) if path else None
        self.interval = interval
        self.max_age = max_age
        self.metrics = metrics
        self.hostname = "unknown"
        self.connected = False
        self.loop_at = 0.0

    def tick(self) -> None:
        """The consumer loop ran (called on its timer)."""
        self.loop_at = time.time()
        if self.metrics is not None:
            self.metrics.heartbeat.set(self.loop_at)

    def set_connected(self, connected: bool, hostname: str | None = None) -> None:
        if hostname:
            self.hostname = hostname
        self.connected = connected
        if connected:
            self.tick()
        if self.metrics is not None:
            self.metrics.broker_connected.set(1.0 if connected else 0.0)

    def up(self) -> bool:
        """Connected, and the consumer loop ran within ``max_age``."""
        return self.connected and time.time() - self.loop_at <= self.max_age

    def document(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "hostname": self.hostname, "written_at": time.time(),
                "loop_at": self.loop_at, "connected": self.connected}

    def write(self) -> None:
        if self.path is None:
            return
        try:
            write_heartbeat_file(self.path, self.document())
        except OSError as exc:
            log.warning("worker.heartbeat_unwritable", path=str(self.path), error=str(exc))

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Write the file from a thread of this process until the block ends; then
        stop the thread and remove the file (a stopped worker is not live)."""
        stop = threading.Event()
        thread = threading.Thread(target=self._run, args=(stop,), name="cargo-heartbeat",
                                  daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
            if self.path is not None:
                with contextlib.suppress(OSError):
                    self.path.unlink()

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.write()
            stop.wait(self.interval)


class HeartbeatStep(bootsteps.StartStopStep):
    """Stamps the heartbeat on the consumer's timer while the consumer is connected."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._entry: Any = None
        self._heartbeat: Heartbeat | None = None

    def start(self, parent: Any) -> None:
        runtime = runtime_of(parent.app)
        heartbeat = runtime.heartbeat if runtime is not None else None
        if heartbeat is None or parent.timer is None:
            return
        self._heartbeat = heartbeat
        heartbeat.set_connected(True, parent.hostname)
        if heartbeat.metrics is not None:
            heartbeat.metrics.bind_worker(heartbeat.hostname, heartbeat.up,
                                          running_count)
        self._entry = parent.timer.call_repeatedly(heartbeat.interval, heartbeat.tick)

    def stop(self, parent: Any) -> None:
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None
        if self._heartbeat is not None:
            self._heartbeat.set_connected(False)

    shutdown = stop
