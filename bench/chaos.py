"""Chaos benchmark: a few thousand tasks through a gateway and workers on the local
three-node cluster while workers are SIGKILLed, a node restarts, the gateway restarts
and a node is stopped for good. Prints accepted, lost, executed twice and drain time.

    .venv/bin/python -m bench.chaos [--tasks 3000] [--rate 60] [--workers 2]
                                    [--kill-every 3] [--keep-cluster]

The cluster is ``scripts/rabbitmq-cluster.sh``'s (started if needed, stopped at the
end unless ``--keep-cluster``), on a private vhost. One gateway (``cargoctl
gateway``) and ``--workers`` workers (``cargoctl worker``, prefork, two children)
each get ``RABBITMQ_URL`` naming the three nodes, starting with different ones.
Submissions (``POST /distance/`` and, one in five, ``POST /tasks/sleep`` of 0.2 s so
that kills hit running tasks) are paced at ``--rate`` per second until ``--tasks``
were accepted (202). Meanwhile, on a fixed timeline:

- every ``--kill-every`` seconds one worker's whole process group (main process and
  children) gets SIGKILL, and a new worker is started in its place;
- at 5 s the gateway is stopped (SIGTERM) and started again on the same port;
- at 12 s the broker node leading the task queue restarts (``stop_app``, 3 s,
  ``start_app``): every connection to it drops, the queue elects a new leader;
- at 24 s the whole broker restarts: all three nodes stop, then start together;
- at 50 s the node then leading the task queue is stopped for good.

Then the kills stop and the run waits (bounded, ``--drain-timeout``) until every
accepted task has a terminal event on ``cargo.events.stream`` — the ground truth,
read from its first offset (``bench.stream_tally``). Definitions:

- **accepted**: answered 202. Anything else (503, 429, 404 while a restarted gateway
  has not yet heard a worker's catalog, connection refused during its restart) was
  not accepted and is counted by kind;
- **lost**: accepted, with no terminal event (succeeded, dead_lettered, revoked)
  when the drain ends;
- **executed twice**: accepted tasks with more than one ``started`` event, or more
  than one terminal event (outcome);
- **504 outcome unknown**: answered ``504 publish_outcome_unknown`` (the message was
  written, its confirm never came: it may run), counted apart from the 503s, with how
  many of them ran;
- **ran though not accepted**: task ids with a ``started`` or terminal event that
  were never answered 202 nor 504 (a 503 whose message the broker enqueued after
  all, or a request cut by the gateway's restart);
- **duplicate causes**: each executed-twice task's cause, from its events
  (``bench.duplicate_causes``);
- **last event not terminal**: accepted tasks whose latest event in stream order
  came after their terminal one, by state (the gateway ignores such late events:
  ``gateway.store``);
- **drain time**: from the last submission to the last accepted task's terminal event.

The result JSON goes to ``bench/results/chaos-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench import cluster
from bench.duplicate_causes import cause_of
from bench.procs import Proc, clean_env, free_port, start_gateway, start_worker, wait_ready
from bench.stream_tally import TERMINAL, StreamTally
from broker.events import TaskEvent

RESULTS = Path(__file__).resolve().parent / "results"
QUEUE = "cargo"


@dataclass
class Outcome:
    """What happened, as the client and the events stream saw it."""

    accepted: dict[str, float] = field(default_factory=dict)  # task_id -> time of the 202
    not_accepted: Counter[str] = field(default_factory=Counter)  # "503", "unreachable"…
    # 504 publish_outcome_unknown: written, never confirmed; may run (task ids)
    outcome_unknown: set[str] = field(default_factory=set)
    killed: list[str] = field(default_factory=list)  # hostname prefixes of killed workers
    attempts: int = 0
    worker_kills: int = 0
    chaos: list[dict[str, Any]] = field(default_factory=list)  # the timeline, as it ran


class Chaos:
    def __init__(self, args: argparse.Namespace, vhost: cluster.ClusterVhost,
                 log_dir: Path) -> None:
        self.args = args
        self.vhost = vhost
        self.log_dir = log_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.outcome = Outcome()
        self.workers: list[Proc] = []
        self.gateway: Proc | None = None
        self.started = time.monotonic()
        self.stopped_node: str | None = None

    def env(self, first: str) -> dict[str, str]:
        return clean_env(self.vhost.url(first),
                         CARGO_MANAGEMENT_URL=cluster.management_url("a"),
                         CARGO_LOG_LEVEL="WARNING")

    def note(self, what: str, **details: Any) -> None:
        at = round(time.monotonic() - self.started, 1)
        self.outcome.chaos.append({"at_s": at, "what": what, **details})
        print(f"  {at:6.1f}s  {what} {details if details else ''}", flush=True)

    def new_worker(self, index: int) -> Proc:
        first = cluster.NODES[index % len(cluster.NODES)]
        return start_worker(f"chaos-worker-{index}", self.env(first), self.log_dir)

    async def submit(self, http: aiohttp.ClientSession, until: float) -> None:
        """One client: paced attempts until enough were accepted or time is up."""
        pause = self.args.concurrency / self.args.rate
        while len(self.outcome.accepted) < self.args.tasks and time.monotonic() < until:
            began = time.monotonic()
            self.outcome.attempts += 1
            sleep_task = random.random() < 0.2
            try:
                if sleep_task:
                    request = http.post(f"{self.url}/tasks/sleep", json={"args": [0.2]})
                else:
                    request = http.post(f"{self.url}/distance/", params={"x": 3, "y": 4})
                async with request as resp:
                    body = await resp.json(content_type=None)
                    if resp.status == 202:
                        self.outcome.accepted[body["task_id"]] = time.monotonic()
                    elif resp.status == 504 and _code(body) == "publish_outcome_unknown":
                        self.outcome.outcome_unknown.add(body["error"]["details"]["task_id"])
                    else:
                        self.outcome.not_accepted[str(resp.status)] += 1
            except TimeoutError:
                self.outcome.not_accepted["timed out (unknown)"] += 1
            except aiohttp.ClientError:
                self.outcome.not_accepted["unreachable"] += 1
            await asyncio.sleep(max(0.0, pause - (time.monotonic() - began)))

    async def kill_workers(self, stop: asyncio.Event) -> None:
        index = len(self.workers)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.args.kill_every)
            if stop.is_set():
                return
            victim = random.randrange(len(self.workers))
            self.outcome.killed.append(f"{self.workers[victim].name}-")
            self.workers[victim].kill(signal.SIGKILL)
            await asyncio.to_thread(self.workers[victim].stop, 5)
            self.outcome.worker_kills += 1
            self.workers[victim] = self.new_worker(index)
            index += 1

    async def timeline(self, http: aiohttp.ClientSession) -> None:
        await self.at(5)
        self.note("gateway restart")
        assert self.gateway is not None
        await asyncio.to_thread(self.gateway.stop)
        self.gateway = start_gateway(self.port, self.env("c"), self.log_dir)
        await wait_ready(http, self.url, self.gateway, timeout=120)
        self.note("gateway ready again")

        await self.at(12)
        leader = await asyncio.to_thread(cluster.leader_of, self.vhost, QUEUE, "c")
        self.note("broker node restart", node=cluster.node_name(leader))
        await asyncio.to_thread(cluster.stop_node, leader)
        await asyncio.sleep(3)
        await asyncio.to_thread(cluster.start_node, leader)
        self.note("broker node back", node=cluster.node_name(leader))

        await self.at(24)
        self.note("whole broker restart (all three nodes)")
        await asyncio.gather(*(asyncio.to_thread(cluster.stop_node, n) for n in cluster.NODES))
        await asyncio.sleep(2)
        await asyncio.gather(*(asyncio.to_thread(cluster.start_node, n) for n in cluster.NODES))
        self.note("whole broker back")

        await self.at(50)
        up = next(n for n in cluster.NODES if n != leader)
        victim = await asyncio.to_thread(cluster.leader_of, self.vhost, QUEUE, up)
        self.note("broker node stopped for good", node=cluster.node_name(victim))
        await asyncio.to_thread(cluster.stop_node, victim)
        self.stopped_node = victim
        self.note("broker node stopped", node=cluster.node_name(victim))

    async def at(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, self.started + seconds - time.monotonic()))

    async def run(self) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            self.gateway = start_gateway(self.port, self.env("c"), self.log_dir)
            await wait_ready(http, self.url, self.gateway, timeout=120)
            self.workers = [self.new_worker(i) for i in range(self.args.workers)]
            urls = self.vhost.url("a").split(",")
            async with StreamTally(urls) as tally:
                self.started = time.monotonic()
                self.note("submitting", tasks=self.args.tasks, rate=self.args.rate)
                stop_kills = asyncio.Event()
                killer = asyncio.create_task(self.kill_workers(stop_kills))
                chaos = asyncio.create_task(self.timeline(http))
                until = self.started + self.args.tasks / self.args.rate * 4 + 120
                await asyncio.gather(*(self.submit(http, until)
                                       for _ in range(self.args.concurrency)))
                submitted = time.monotonic()
                self.note("submissions done", accepted=len(self.outcome.accepted))
                await asyncio.wait_for(chaos, 600)  # the timeline finishes its steps
                stop_kills.set()
                await asyncio.wait_for(killer, 60)
                self.note("kills stopped; draining")
                accepted = set(self.outcome.accepted)
                missing = await tally.wait_finished(accepted, self.args.drain_timeout)
                last = max((e.ts for t in accepted for e in tally.events.get(t, [])
                            if e.state.value in TERMINAL), default=None)
                self.note("drained" if not missing else "drain timed out",
                          missing=len(missing))
                return self.summary(tally, missing, submitted, last)

    def summary(self, tally: StreamTally, missing: set[str], submitted: float,
                last_terminal: datetime | None) -> dict[str, Any]:
        accepted = set(self.outcome.accepted)
        started_twice = [t for t in accepted if tally.count(t, "started") > 1]
        outcome_twice = [t for t in accepted
                         if sum(tally.count(t, s) for s in TERMINAL) > 1]
        ran = {t for t, events in tally.events.items()
               if any(e.state.value == "started" or e.state.value in TERMINAL for e in events)}
        final: Counter[str] = Counter()
        for t in accepted - missing:
            terminal = [e for e in tally.events[t] if e.state.value in TERMINAL]
            first = terminal[0]
            final[first.state.value + (f" ({first.reason})" if first.reason else "")] += 1
        # what a client sees last: a terminal state followed by another event
        # (e.g. 'retrying' from a worker that lost its node after success)
        ends_not_terminal = Counter(
            last.state.value for t in accepted - missing
            if (last := max(tally.events[t], key=_stream_order)).state.value not in TERMINAL)
        # tasks that ended other than succeeded, with their events (to explain them)
        not_succeeded = {t: [(e.state.value, e.hostname, e.reason) for e in
                             sorted(tally.events[t], key=_stream_order)]
                         for t in accepted - missing
                         if not any(e.state.value == "succeeded" for e in tally.events[t])}
        causes = Counter(c for t in accepted - missing
                         if (c := cause_of(tally.events[t], self.outcome.killed)) is not None)
        unknown = self.outcome.outcome_unknown
        drain = None  # lost tasks: the drain never ended
        if not missing and last_terminal is not None:
            # the last terminal event's own timestamp, from the last submission
            submitted_wall = time.time() - (time.monotonic() - submitted)
            drain = max(0.0, last_terminal.timestamp() - submitted_wall)
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "settings": {k: v for k, v in vars(self.args).items() if k != "keep_cluster"},
            "attempts": self.outcome.attempts,
            "accepted": len(accepted),
            "not_accepted": dict(self.outcome.not_accepted),
            "lost": len(missing),
            "lost_task_ids": sorted(missing)[:50],
            "executed_twice": len(set(started_twice) | set(outcome_twice)),
            "started_twice": len(started_twice),
            "outcome_twice": len(outcome_twice),
            "duplicate_causes": dict(causes),
            "outcome_unknown_504": len(unknown),
            "outcome_unknown_504_ran": len(ran & unknown),
            "ran_though_not_accepted": len(ran - accepted - unknown),
            "last_event_not_terminal": sum(ends_not_terminal.values()),
            "last_event_not_terminal_states": dict(ends_not_terminal),
            "final_states": dict(final),
            "not_succeeded_events": dict(list(not_succeeded.items())[:20]),
            "drain_seconds": None if drain is None else round(drain, 2),
            "submission_seconds": round(submitted - self.started, 2),
            "worker_kills": self.outcome.worker_kills,
            "timeline": self.outcome.chaos,
            "stream_reader_reconnects": tally.reconnects,
        }

    def stop(self) -> None:
        for proc in [*self.workers, *([self.gateway] if self.gateway else [])]:
            proc.stop()


def _stream_order(event: TaskEvent) -> int:
    return -1 if event.cursor is None else event.cursor


def _code(body: Any) -> Any:
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def print_result(result: dict[str, Any], path: Path) -> None:
    print(f"\n| accepted | lost | executed twice (started / outcome) | ran though not accepted"
          f" | 504 outcome unknown (ran) | not accepted | worker SIGKILLs | drain time |\n"
          f"| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |\n"
          f"| {result['accepted']} | {result['lost']} | "
          f"{result['executed_twice']} ({result['started_twice']} / {result['outcome_twice']})"
          f" | {result['ran_though_not_accepted']} | {result['outcome_unknown_504']} "
          f"({result['outcome_unknown_504_ran']}) | {result['not_accepted']} | "
          f"{result['worker_kills']} | {result['drain_seconds']} s |")
    print(f"duplicate causes: {result['duplicate_causes']}")
    print(f"final states: {result['final_states']}; tasks whose last event is not terminal:"
          f" {result['last_event_not_terminal']} {result['last_event_not_terminal_states']}")
    print(f"written to {path}")


async def teardown(run: Chaos, vhost: cluster.ClusterVhost, keep_cluster: bool) -> None:
    """Put the cluster back (or stop it); a failure here is reported, not raised, so the
    run's result is still written."""
    try:
        if run.stopped_node is not None:
            await asyncio.to_thread(cluster.start_node, run.stopped_node)
        with contextlib.suppress(Exception):
            await cluster.delete_vhost(vhost, via="a")
        if not keep_cluster:
            await asyncio.to_thread(cluster.stop)
    except cluster.ClusterError as exc:
        print(f"cluster teardown: {exc}", flush=True)


async def main_async(args: argparse.Namespace) -> int:
    # Each dropped connection is expected here and counted; aiormq's tracebacks are noise.
    for name in ("aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    print("starting the local cluster (scripts/rabbitmq-cluster.sh start) ...", flush=True)
    await asyncio.to_thread(cluster.start)
    vhost = await cluster.create_vhost(prefix="cargo-chaos")
    log_dir = Path(tempfile.mkdtemp(prefix="cargo-chaos-"))
    print(f"vhost {vhost.vhost}; process logs in {log_dir}", flush=True)
    run = Chaos(args, vhost, log_dir)
    try:
        result = await run.run()
    finally:
        run.stop()
        await teardown(run, vhost, args.keep_cluster)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"chaos-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print_result(result, path)
    return 0 if result["lost"] == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=3000, help="tasks to get accepted")
    parser.add_argument("--rate", type=float, default=60.0, help="attempts per second")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=3.0,
                        help="seconds between worker SIGKILLs")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--keep-cluster", action="store_true",
                        help="leave the cluster running afterwards")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()

