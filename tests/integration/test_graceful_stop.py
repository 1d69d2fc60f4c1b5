"""SIGTERM to a worker's main process (what Kubernetes sends, what
``scripts/stack.sh --stop`` sends) is Celery's warm shutdown: the running task
finishes once, the worker exits 0, and it takes nothing new.

Each test has a vhost of its own, so no other worker can take the tasks.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from broker.management import ManagementClient
from broker.settings import Settings
from tests.support.events import publish_marker
from tests.support.eventually import eventually
from tests.support.gateway import Gateway, WsClient, events_of, running_gateway, terminal
from tests.support.logs import logged
from tests.support.processes import ROOT, Proc, start_worker
from tests.support.rabbit import private_vhost

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# Long enough that SIGTERM surely arrives while it runs, short enough for a test.
TASK_SECONDS = 6


@pytest.fixture
def vhost(rabbitmq: Settings) -> Iterator[Settings]:
    with private_vhost("cargo-test-stop") as settings:
        yield settings


async def started_sleep(gw: Gateway, ws: WsClient) -> tuple[str, list[dict[str, Any]]]:
    """Submit a ``sleep`` task and wait (bounded) until a worker started it."""
    task_id = await gw.submit("sleep", kwargs={"seconds": TASK_SECONDS})
    frames = await ws.receive_until(
        lambda f: f.get("task_id") == task_id and f.get("state") == "started", timeout=90)
    return task_id, frames


async def queue_counts(settings: Settings) -> tuple[int, int]:
    async with ManagementClient(settings.management_api) as api:
        info = await api.get_queue(settings.vhost, settings.task_queue)
    return int(info.get("messages_ready") or 0), int(info.get("messages_unacknowledged") or 0)


async def wait_queue_holds(settings: Settings, ready: int, timeout: float = 60) -> None:
    """The management API's counters lag: poll (bounded) until ready/unacked match."""
    await eventually(lambda: queue_counts(settings), timeout, f"{ready} ready and none unacked",
                     until=lambda counts: counts == (ready, 0))


async def until_marker(settings: Settings, ws: WsClient) -> list[dict[str, Any]]:
    """The frames of a subscriber to all tasks up to a marker put on the stream
    now: the stopped worker's events are on the stream before it. (The gateway
    announces a submission in a batch, possibly after the marker: the callers
    wait for that announcement first.)"""
    marker = await publish_marker(settings)
    return await ws.receive_until(lambda f: f.get("task_id") == marker)


def exit_code(worker: Proc, timeout: float) -> int:
    return worker.popen.wait(timeout)


async def finish_after_stop(gw: Gateway, ws: WsClient, worker: Proc,
                            stop: Any) -> tuple[str, list[dict[str, Any]], str]:
    """Start a task, ``stop()`` the worker, submit another; frames up to the first
    task's end, and the second task's id."""
    task_id, frames = await started_sleep(gw, ws)
    await stop()
    later = await gw.submit("calculate_distance", args=[3, 4])
    frames += await ws.receive_until(terminal(task_id), timeout=90)
    return task_id, frames, later


async def test_sigterm_lets_the_running_task_succeed_once_exits_0_and_leaves_later_tasks_queued(
        vhost: Settings) -> None:
    worker = await asyncio.to_thread(start_worker, vhost, "stopping", 2)
    other: Proc | None = None
    try:
        async with running_gateway(vhost) as gw, gw.ws() as ws:
            await ws.send({"op": "subscribe", "all": True})
            await ws.receive()

            async def sigterm() -> None:
                os.kill(worker.pid, signal.SIGTERM)  # the main process only, as Kubernetes does

            task_id, frames, later = await finish_after_stop(gw, ws, worker, sigterm)
            assert await asyncio.to_thread(exit_code, worker, 60) == 0, worker.output()[-3000:]
            if not events_of(frames, later):  # announced in a batch, maybe not yet
                frames += await ws.receive_until(lambda f: f.get("task_id") == later)
            frames += await until_marker(vhost, ws)
            states = [f["state"] for f in events_of(frames, task_id)]
            assert states.count("started") == 1, states
            assert states[-1] == "succeeded", states
            assert "failed" not in states, states
            assert "retrying" not in states, states
            assert [f["state"] for f in events_of(frames, later)] == ["queued"]
            # the later task waits in the queue for another worker, which runs it
            await wait_queue_holds(vhost, ready=1)
            other = await asyncio.to_thread(start_worker, vhost, "successor", 1)
            done = await gw.wait_state(later, {"succeeded"}, timeout=90)
            assert done["result"] == 5.0
    finally:
        for proc in (worker, other):
            if proc is not None:
                await asyncio.to_thread(proc.stop)


async def test_stack_stop_lets_a_running_task_finish(vhost: Settings) -> None:
    """``stop_process`` of scripts/stop.sh, which ``scripts/stack.sh --stop`` runs."""
    worker = await asyncio.to_thread(start_worker, vhost, "stack-worker", 2)
    stopper: subprocess.CompletedProcess[str] | None = None
    try:
        async with running_gateway(vhost) as gw, gw.ws() as ws:
            await ws.send({"op": "subscribe", "all": True})
            await ws.receive()

            async def stack_stop() -> None:
                nonlocal stopper
                script = ('source scripts/lib.sh && source scripts/stop.sh && '
                          f'stop_process worker {worker.pid} 60')
                # it returns once the worker exited (or was killed at 60 s)
                stopper = await asyncio.to_thread(
                    subprocess.run, ["bash", "-c", script], cwd=ROOT, capture_output=True,
                    text=True, timeout=120)

            task_id, frames, later = await finish_after_stop(gw, ws, worker, stack_stop)
            assert stopper is not None
            assert stopper.returncode == 0, stopper
            assert "did not stop" not in stopper.stderr, stopper.stderr
            assert await asyncio.to_thread(exit_code, worker, 10) == 0, worker.output()[-3000:]
            if not events_of(frames, later):  # announced in a batch, maybe not yet
                frames += await ws.receive_until(lambda f: f.get("task_id") == later)
            frames += await until_marker(vhost, ws)
            states = [f["state"] for f in events_of(frames, task_id)]
            assert states.count("started") == 1, states
            assert states[-1] == "succeeded", states
            await wait_queue_holds(vhost, ready=1)  # the later task, untouched
            assert [f["state"] for f in events_of(frames, later)] == ["queued"]
    finally:
        await asyncio.to_thread(worker.stop)


async def test_a_task_leaking_past_its_limit_while_the_worker_drains_is_stopped_and_the_next_worker_dead_letters_it(  # noqa: E501
        vhost: Settings) -> None:
    """Celery stops the consumer (and the memory guard's timer) before it waits for
    running tasks; Cargo's guard keeps watching until they are done."""
    limits = {"CARGO_TASK_LIMITS": json.dumps({"memory_leak_task": {"memory_mb": 48}})}
    worker = await asyncio.to_thread(start_worker, vhost, "leaky-drain", 1, **limits)
    successor: Proc | None = None
    try:
        async with running_gateway(vhost) as gw, gw.ws() as ws:
            await ws.send({"op": "subscribe", "all": True})
            await ws.receive()
            # unguarded it would run 40 s and succeed with 160 MiB leaked
            task_id = await gw.submit("memory_leak_task",
                                      kwargs={"mb_per_second": 4, "seconds": 40})
            frames = await ws.receive_until(
                lambda f: f.get("task_id") == task_id and f.get("state") == "started",
                timeout=90)
            os.kill(worker.pid, signal.SIGTERM)
            assert await asyncio.to_thread(exit_code, worker, 90) == 0, worker.output()[-3000:]
            assert logged(worker.output(), "memory_guard.stopped_while_shutting_down")
            frames += await until_marker(vhost, ws)
            assert "succeeded" not in [f["state"] for f in events_of(frames, task_id)]
            await wait_queue_holds(vhost, ready=1)  # back in the queue, not lost
            successor = await asyncio.to_thread(start_worker, vhost, "leaky-next", 1, **limits)
            frames += await ws.receive_until(terminal(task_id), timeout=120)
            last = events_of(frames, task_id)[-1]
            assert (last["state"], last["reason"]) == ("dead_lettered", "memory_limit"), last
    finally:
        for proc in (worker, successor):
            if proc is not None:
                await asyncio.to_thread(proc.stop)
