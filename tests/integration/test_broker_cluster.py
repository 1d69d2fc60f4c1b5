"""Losing the node that leads the task queue of a three-node RabbitMQ cluster.

The cluster is the project's own (``scripts/rabbitmq-cluster.sh``, started here and
stopped afterwards; when the script cannot start it, the tests fail with the
script's message). Two real Celery workers and a real gateway all get
``RABBITMQ_URL`` naming the three nodes; the gateway and one worker list the
leader of the task queue first, so they are connected to it when it goes.
2,000 ``POST /distance/`` are submitted; once 500 of the first thousand were
accepted, the node leading the quorum queue ``cargo`` is stopped (``rabbitmqctl
stop_app``); the second thousand go after it is down. The run happens once per
module (``cluster_run``); each test checks one property of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from bench import cluster
from bench.stream_tally import TERMINAL, StreamTally
from broker.connection import BrokerConnection
from broker.settings import Settings, load_settings
from broker.topology import EVENTS_STREAM, build_topology
from tests.support.gateway import Gateway, running_gateway
from tests.support.processes import Proc, start_worker

# the first test also runs the module's scenario (cluster start, 2,000 tasks, drain)
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ATTEMPTS_PER_PHASE = 1000
STOP_AFTER_ACCEPTED = 500
SUBMITTERS = 16
ALL_NODES = [cluster.node_name(n) for n in cluster.NODES]


@dataclass
class ClusterRun:
    """Everything the tests check, gathered while the gateway and workers still ran."""

    leader: str = ""
    quorum_members: list[str] = field(default_factory=list)
    stream_members: list[str] = field(default_factory=list)
    results: Submissions | None = None
    missing: set[str] = field(default_factory=set)
    not_exactly_succeeded: dict[str, list[str]] = field(default_factory=dict)
    started_twice: list[str] = field(default_factory=list)
    http_not_succeeded: list[tuple[str, int, str]] = field(default_factory=list)
    workers_idle_after_stop: list[str] = field(default_factory=list)
    workers_dead: list[str] = field(default_factory=list)
    refused_but_ran: list[str] = field(default_factory=list)

    @property
    def submissions(self) -> Submissions:
        assert self.results is not None
        return self.results


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[None]:
    try:
        cluster.start()
    except cluster.ClusterError as exc:
        with contextlib.suppress(cluster.ClusterError):
            cluster.stop()  # whatever it did start
        pytest.fail(f"the local cluster did not start:\n{exc}", pytrace=False)
    try:
        yield
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def cluster_run(local_cluster: None) -> ClusterRun:
    vhost = asyncio.run(cluster.create_vhost())
    return asyncio.run(lose_the_leader(vhost))  # the cluster is removed with its vhosts


def settings_for(vhost: cluster.ClusterVhost, first: str, management: str) -> Settings:
    return load_settings({"RABBITMQ_URL": vhost.url(first),
                          "CARGO_MANAGEMENT_URL": cluster.management_url(management)})


async def declare(settings: Settings) -> None:
    async with BrokerConnection(settings, build_topology(settings),
                                name="test-declare") as connection:
        assert await connection.wait_ready(60), connection.last_error


@dataclass
class Submissions:
    accepted: dict[str, str] = field(default_factory=dict)  # task_id -> phase
    refused: dict[str, int] = field(default_factory=dict)  # phase -> 503s
    # 504 publish_outcome_unknown: written, never confirmed; the task may run
    unknown: dict[str, str] = field(default_factory=dict)  # task_id -> phase
    statuses: list[tuple[str, int]] = field(default_factory=list)  # (phase, status) in order


async def submit_phase(gateway: Gateway, phase: str, attempts: int, results: Submissions,
                       on_accepted: asyncio.Event | None = None) -> None:
    """``attempts`` POST /distance/ from SUBMITTERS concurrent clients."""
    remaining = iter(range(attempts))

    async def submitter() -> None:
        for _ in remaining:
            async with gateway.http.post(f"{gateway.url}/distance/",
                                         params={"x": 3, "y": 4}) as resp:
                body = await resp.json()
                results.statuses.append((phase, resp.status))
                if resp.status == 202:
                    results.accepted[body["task_id"]] = phase
                    accepted = sum(1 for p in results.accepted.values() if p == phase)
                    if on_accepted is not None and accepted >= STOP_AFTER_ACCEPTED:
                        on_accepted.set()
                elif resp.status == 503:
                    assert body["error"]["code"] == "broker_unavailable", body
                    assert resp.headers.get("Retry-After"), resp.headers
                    results.refused[phase] = results.refused.get(phase, 0) + 1
                elif resp.status == 504:
                    assert body["error"]["code"] == "publish_outcome_unknown", body
                    results.unknown[body["error"]["details"]["task_id"]] = phase
                else:
                    raise AssertionError(f"unexpected {resp.status}: {body}")

    await asyncio.gather(*(submitter() for _ in range(SUBMITTERS)))


async def lose_the_leader(vhost: cluster.ClusterVhost) -> ClusterRun:
    run = ClusterRun()
    await declare(settings_for(vhost, "a", "a"))
    leader = await asyncio.to_thread(cluster.leader_of, vhost, "cargo", "a")
    survivor = next(n for n in cluster.NODES if n != leader)
    run.leader = cluster.node_name(leader)
    run.quorum_members = sorted(row["Node Name"] for row in await asyncio.to_thread(
        cluster.quorum_status, vhost, "cargo", survivor))
    run.stream_members = sorted(row["node"] for row in await asyncio.to_thread(
        cluster.stream_status, vhost, EVENTS_STREAM, survivor))

    workers: list[Proc] = []
    try:
        # The gateway and one worker start on the leader, so they lose their
        # connection when it stops; the other worker starts on another node.
        for index, first in enumerate((leader, survivor)):
            workers.append(await asyncio.to_thread(
                start_worker, settings_for(vhost, first, survivor),
                f"cluster-worker-{index}", 2))
        run.results = results = Submissions()
        async with running_gateway(settings_for(vhost, leader, survivor)) as gateway, \
                StreamTally(vhost.url(survivor).split(",")) as tally:
            half_way = asyncio.Event()
            stopping = asyncio.create_task(_stop_when(half_way, leader))
            await submit_phase(gateway, "during", ATTEMPTS_PER_PHASE, results, half_way)
            stopped_after = await asyncio.wait_for(stopping, 300)
            await submit_phase(gateway, "after", ATTEMPTS_PER_PHASE, results)

            accepted = set(results.accepted)
            run.missing = await tally.wait_finished(accepted, timeout=420)
            run.not_exactly_succeeded = {
                t: tally.states(t) for t in accepted
                if {s for s in tally.states(t) if s in TERMINAL} != {"succeeded"}}
            run.started_twice = sorted(t for t in accepted if tally.count(t, "started") > 1)
            for task_id in accepted:
                status, doc = await gateway.task(task_id)
                if (status, doc.get("state")) != (200, "succeeded"):
                    run.http_not_succeeded.append((task_id, status, str(doc)))
                    seen = [(e.state.value, e.hostname, e.error) for e in tally.events[task_id]]
                    print(f"\nGET /tasks/{task_id}: {status} {doc}\n  stream: {seen}")
            # more tasks, in small batches, until each worker ran one (bounded)
            run.workers_idle_after_stop = await each_worker_runs_again(
                gateway, tally, results, workers)
            run.workers_dead = [w.output()[-2000:] for w in workers if not w.alive()]
            run.refused_but_ran = sorted(
                set(tally.events) - set(results.accepted) - set(results.unknown))
            print(f"\nleader {run.leader} stopped in {stopped_after:.1f}s; "
                  f"accepted {len(accepted)}, 503 by phase {results.refused}, "
                  f"504 (outcome unknown) {len(results.unknown)}, "
                  f"lost {len(run.missing)}, started twice {len(run.started_twice)}, "
                  f"refused but ran {len(run.refused_but_ran)}")
    finally:
        for worker in workers:
            worker.stop()
    return run


def test_the_task_queue_and_the_events_stream_have_a_replica_on_every_node(
        cluster_run: ClusterRun) -> None:
    assert cluster_run.quorum_members == ALL_NODES
    assert cluster_run.stream_members == ALL_NODES


def test_no_accepted_task_is_lost_when_the_task_queue_leader_stops(
        cluster_run: ClusterRun) -> None:
    assert len(cluster_run.submissions.accepted) >= ATTEMPTS_PER_PHASE
    assert not cluster_run.missing, sorted(cluster_run.missing)[:5]


def test_every_accepted_task_reaches_exactly_one_terminal_state_on_the_events_stream(
        cluster_run: ClusterRun) -> None:
    assert not cluster_run.not_exactly_succeeded, list(
        cluster_run.not_exactly_succeeded.items())[:5]


def test_get_tasks_shows_every_accepted_task_succeeded_after_the_failover(
        cluster_run: ClusterRun) -> None:
    assert not cluster_run.http_not_succeeded, cluster_run.http_not_succeeded[:5]


def test_the_gateway_accepts_every_submission_once_the_leader_is_gone(
        cluster_run: ClusterRun) -> None:
    results = cluster_run.submissions
    after = [status for phase, status in results.statuses if phase == "after"]
    assert after.count(202) > 0, results.refused
    # it may refuse (503) while it fails over; once settled, it accepts everything
    assert after[-100:] == [202] * 100, results.refused


def test_both_workers_carry_on_through_the_other_nodes(cluster_run: ClusterRun) -> None:
    assert not cluster_run.workers_dead, cluster_run.workers_dead
    assert not cluster_run.workers_idle_after_stop


def test_a_503_during_the_failover_means_the_task_never_runs(cluster_run: ClusterRun) -> None:
    assert not cluster_run.refused_but_ran, cluster_run.refused_but_ran[:5]


async def each_worker_runs_again(gateway: Gateway, tally: StreamTally, results: Submissions,
                                 workers: list[Proc], timeout: float = 180) -> list[str]:
    """Names of the workers that ran no task submitted after the stop within ``timeout``."""
    names = [f"cluster-worker-{index}-" for index in range(len(workers))]
    deadline = time.monotonic() + timeout
    while True:
        after = [t for t, p in results.accepted.items() if p == "after"]
        hosts = {e.hostname or "" for t in after for e in tally.events.get(t, [])
                 if e.state.value == "succeeded"}
        missed = [n for n in names if not any(n in h for h in hosts)]
        for worker in workers:
            assert worker.alive(), worker.output()[-3000:]
        if not missed or time.monotonic() > deadline:
            return missed
        await submit_phase(gateway, "after", 20, results)
        await tally.wait_finished(set(results.accepted), timeout=60)


async def _stop_when(signal: asyncio.Event, leader: str) -> float:
    await asyncio.wait_for(signal.wait(), 300)
    started = time.monotonic()
    await asyncio.to_thread(cluster.stop_node, leader)
    return time.monotonic() - started
