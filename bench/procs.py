"""Cargo processes for benchmarks: workers and gateways as real subprocesses.

Each runs in its own process group (so a SIGKILL reaches a prefork worker's
children too) with its output in a log file. ``bench/`` does not import
``tests/``; this is the benchmarks' own copy of what they need (and
``tests/support/processes.py`` takes :func:`outlive_no_parent` from here).

No orphans: a process group of its own also means a Ctrl-C or a ``timeout``'s
SIGTERM aimed at the benchmark never reaches its workers and gateways. Two
guards, both set where a process starts (see :func:`outlive_no_parent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO

import aiohttp

BIN = Path(sys.executable).parent


def clean_env(rabbitmq_url: str, **extra: str) -> dict[str, str]:
    """This environment without any CARGO_ or RABBITMQ_URL of the caller's, plus ours."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CARGO_") and k != "RABBITMQ_URL"}
    env["RABBITMQ_URL"] = rabbitmq_url
    env.update(extra)
    return env


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _sigterm_as_ctrl_c(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def outlive_no_parent() -> Callable[[], None] | None:
    """Make a child about to start die with this process; the ``preexec_fn`` for it.

    1. SIGTERM here (what ``timeout`` and ``kill`` send) raises KeyboardInterrupt,
       as Ctrl-C does, so the benchmark's own cleanup (``finally``, context managers:
       ``Proc.stop``, a private vhost's removal) runs instead of Python dying on the
       spot. Installed only over the default action, only from the main thread.
    2. The child asks Linux for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``):
       that still holds when no cleanup can run (SIGKILL, a crash, a cleanup that
       hangs). SIGTERM, not SIGKILL: a Celery worker then stops its own prefork
       children, which a SIGKILL of it would orphan. Linux ties this to the parent
       *thread*, so it is set only for children started from the main thread (one
       started from a pool thread would be killed when that thread exits); a child
       started elsewhere keeps guard 1 only.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_as_ctrl_c)
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    parent = os.getpid()

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl: no signal will come
            os._exit(1)

    return die_with_parent


class Proc:
    """A subprocess in its own process group, with its output in ``log_dir``."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = log_dir / f"{name}-{time.time_ns()}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.popen = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True, preexec_fn=outlive_no_parent())

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a prefork worker's children too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.kill(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        self.kill(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self._log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_worker(name: str, env: dict[str, str], log_dir: Path, concurrency: int = 2) -> Proc:
    env = {"CARGO_WORKER_METRICS_PORT": "0",
           "CARGO_WORKER_HEARTBEAT_FILE": str(log_dir / f"{name}.heartbeat.json"), **env}
    return Proc(name, [str(BIN / "cargoctl"), "worker", "--concurrency", str(concurrency),
                       "--hostname", f"{name}-{os.getpid()}@%h"], env, log_dir)


def start_gateway(port: int, env: dict[str, str], log_dir: Path) -> Proc:
    return Proc("gateway", [str(BIN / "cargoctl"), "gateway", "--host", "127.0.0.1",
                            "--port", str(port)], env, log_dir)


async def wait_ready(http: aiohttp.ClientSession, url: str, proc: Proc | None,
                     timeout: float = 60) -> None:
    """Until ``url/readyz`` answers 200 (bounded); fails early if the process died
    (``proc`` None: a gateway in this process, ``bench.inprocess_gateway``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited; see {proc.log_path}")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(f"{url}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                if r.status == 200:
                    return
        await asyncio.sleep(0.2)
    if proc is None:
        raise TimeoutError(f"the gateway at {url} not ready after {timeout}s")
    raise TimeoutError(f"{proc.name} not ready after {timeout}s; see {proc.log_path}")
