"""CPU seconds of the processes a benchmark compares: RabbitMQ, a process tree, this process.

Read-only (psutil ``cpu_times``): a benchmark samples each component before and
after its measured window and reports the deltas. The one place ``bench/`` finds
RabbitMQ and reads a process tree's CPU (``bench.submit``, ``bench.e2e``,
``bench.depth`` for ``bench.drain`` and ``bench.bridge``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil

# A component's CPU seconds so far (user + system), or None when it cannot be read.
CpuReader = Callable[[], float | None]


def find_broker_process(amqp_url: str) -> psutil.Process | None:
    """The Erlang VM of the local RabbitMQ node listening on ``amqp_url``'s port, if any.

    By the port it listens on, not by its command line: not another node of a
    local cluster (scripts/rabbitmq-cluster.sh), not a ``rabbitmqctl``'s
    short-lived VM. Read-only, for its CPU time.
    """
    port = urlsplit(amqp_url).port or 5672
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] != "beam.smp":
            continue
        try:
            listening = {c.laddr.port for c in proc.net_connections("tcp")
                         if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            continue
        if port in listening:
            return proc
    return None


def cpu_seconds(proc: psutil.Process | None) -> float | None:
    """User + system CPU seconds of one process, None if it is gone or unknown."""
    if proc is None:
        return None
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of a process, its live descendants and the children it has reaped.

    A prefork pool child replaced during the window still counts: once its parent
    reaps it, its time is in the parent's ``children_user``/``children_system``.
    """
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        descendants = root.children(recursive=True)
    except psutil.Error:
        return None
    for proc in descendants:
        own = cpu_seconds(proc)
        total += own or 0.0
    return float(total)


def own_cpu_seconds() -> float:
    """This process's CPU seconds, every thread included."""
    return time.process_time()


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


@dataclass
class CpuWindow:
    """CPU seconds each component used over a window, and the window's wall time."""

    seconds: dict[str, float | None]
    wall: float
    machine: float


class CpuMeter:
    """``meter.start()`` … ``meter.stop()``: each component's CPU delta over the window."""

    def __init__(self, components: Mapping[str, CpuReader]) -> None:
        self._components = dict(components)
        self._start: dict[str, float | None] = {}
        self._machine = 0.0
        self._t0 = 0.0

    def start(self) -> None:
        self._start = {name: read() for name, read in self._components.items()}
        self._machine = machine_busy_seconds()
        self._t0 = time.perf_counter()

    def stop(self) -> CpuWindow:
        wall = time.perf_counter() - self._t0
        machine = machine_busy_seconds() - self._machine
        seconds: dict[str, float | None] = {}
        for name, read in self._components.items():
            before, after = self._start.get(name), read()
            seconds[name] = None if before is None or after is None else after - before
        return CpuWindow(seconds=seconds, wall=wall, machine=machine)
