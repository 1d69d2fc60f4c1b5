"""Losing the node that leads the task queue of a three-node RabbitMQ cluster.

The cluster is the project's own (``scripts/rabbitmq-cluster.sh``, started here and
stopped afterwards; when the script cannot start it, the test fails with the
script's message). Two real Celery workers and a real gateway all get
``RABBITMQ_URL`` naming the three nodes, each starting with a different one, so
every node has a client. 2,000 ``POST /distance/`` are submitted; half-way through
the first thousand, the node leading the quorum queue ``cargo`` is stopped
(``rabbitmqctl stop_app``); the second thousand go after it is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from bench import cluster
from bench.stream_tally import TERMINAL, StreamTally
from broker.connection import BrokerConnection
from broker.settings import Settings, load_settings
from broker.topology import EVENTS_STREAM, build_topology
from tests.support.gateway import Gateway, running_gateway
from tests.support.processes import Proc, start_worker

pytestmark = pytest.mark.integration

ATTEMPTS_PER_PHASE = 1000
STOP_AFTER_ACCEPTED = 500
SUBMITTERS = 16


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[None]:
    try:
        cluster.start()
    except cluster.ClusterError as exc:
        pytest.fail(f"the local cluster did not start:\n{exc}", pytrace=False)
    try:
        yield
    finally:
        cluster.stop()


@pytest.fixture
async def cluster_vhost(local_cluster: None) -> AsyncIterator[cluster.ClusterVhost]:
    vhost = await cluster.create_vhost()
    yield vhost
    # whichever nodes are still up: the cluster is stopped afterwards anyway
    for letter in cluster.NODES:
        try:
            await cluster.delete_vhost(vhost, via=letter)
            break
        except Exception:  # that node is the stopped one
            continue


def settings_for(vhost: cluster.ClusterVhost, first: str, management: str) -> Settings:
    return load_settings({"RABBITMQ_URL": vhost.url(first),
                          "CARGO_MANAGEMENT_URL": cluster.management_url(management)})


async def declare(settings: Settings) -> None:
    connection = BrokerConnection(settings, build_topology(settings), name="test-declare")
    await connection.start()
    try:
        assert await connection.wait_ready(60), connection.last_error
    finally:
        await connection.stop()


@dataclass
class Submissions:
    accepted: dict[str, str] = field(default_factory=dict)  # task_id -> phase
    refused: dict[str, int] = field(default_factory=dict)  # phase -> 503s
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
                else:
                    raise AssertionError(f"unexpected {resp.status}: {body}")

    await asyncio.gather(*(submitter() for _ in range(SUBMITTERS)))


@pytest.mark.timeout(900)
async def test_losing_the_task_queue_leader_loses_no_accepted_task_and_everyone_carries_on(
        cluster_vhost: cluster.ClusterVhost) -> None:
    await declare(settings_for(cluster_vhost, "a", "a"))
    leader = await asyncio.to_thread(cluster.leader_of, cluster_vhost, "cargo", "a")
    survivor = next(n for n in cluster.NODES if n != leader)

    # Both the task queue and the events stream have a replica on every node.
    members = await asyncio.to_thread(cluster.quorum_status, cluster_vhost, "cargo", survivor)
    assert sorted(row["Node Name"] for row in members) == [
        cluster.node_name(n) for n in cluster.NODES]
    replicas = await asyncio.to_thread(cluster.stream_status, cluster_vhost, EVENTS_STREAM,
                                       survivor)
    assert sorted(row["node"] for row in replicas) == [
        cluster.node_name(n) for n in cluster.NODES]

    workers: list[Proc] = []
    try:
        for first in ("a", "b"):
            workers.append(await asyncio.to_thread(
                start_worker, settings_for(cluster_vhost, first, survivor),
                f"cluster-worker-{first}", 2))
        results = Submissions()
        async with running_gateway(settings_for(cluster_vhost, "c", survivor)) as gateway, \
                StreamTally(cluster_vhost.url(survivor).split(",")) as tally:
            half_way = asyncio.Event()
            stopping = asyncio.create_task(_stop_when(half_way, leader))
            await submit_phase(gateway, "during", ATTEMPTS_PER_PHASE, results, half_way)
            stopped_at = await asyncio.wait_for(stopping, 300)
            await submit_phase(gateway, "after", ATTEMPTS_PER_PHASE, results)

            accepted = set(results.accepted)
            missing = await tally.wait_finished(accepted, timeout=420)
            tail = [status for phase, status in results.statuses[-100:]]
            after = {t for t, p in results.accepted.items() if p == "after"}
            twice = sorted(t for t in accepted if tally.count(t, "started") > 1)
            terminal_twice = sorted(
                t for t in accepted if sum(tally.count(t, s) for s in TERMINAL) > 1)
            refused_but_ran = sorted(set(tally.events) - accepted)
            print(f"\nleader stopped: {cluster.node_name(leader)} after {stopped_at:.1f}s; "
                  f"accepted {len(accepted)} (after the stop: {len(after)}), "
                  f"503: {results.refused}, lost: {len(missing)}, started twice: {len(twice)}, "
                  f"terminal event twice: {len(terminal_twice)}, "
                  f"events of tasks not accepted: {len(refused_but_ran)}")

            assert not missing, f"{len(missing)} accepted never finished: {sorted(missing)[:5]}"
            # exactly one terminal state each: calculate_distance(3, 4) succeeds
            wrong = {t: tally.states(t) for t in accepted
                     if {s for s in tally.states(t) if s in TERMINAL} != {"succeeded"}}
            assert not wrong, f"tasks not ending in exactly 'succeeded': {list(wrong.items())[:5]}"
            # the gateway carried on through the other nodes
            assert after, results.refused
            assert tail == [202] * len(tail), (results.refused, tail)
            for task_id in accepted:
                status, doc = await gateway.task(task_id)
                assert (status, doc["state"]) == (200, "succeeded"), (task_id, status, doc)
            # both workers carried on: each runs tasks submitted after the stop (more
            # are submitted, in small batches, until each has run one; bounded)
            missed = await each_worker_runs_again(gateway, tally, results, workers)
            assert not missed, f"workers that ran nothing after the stop: {missed}"
            # a 503 means "not accepted": no task the gateway refused ran
            assert not refused_but_ran, f"refused tasks that ran: {refused_but_ran[:5]}"
    finally:
        for worker in workers:
            worker.stop()


async def each_worker_runs_again(gateway: Gateway, tally: StreamTally, results: Submissions,
                                 workers: list[Proc], timeout: float = 180) -> list[str]:
    """Names of the workers that ran no task submitted after the stop within ``timeout``."""
    names = [f"cluster-worker-{first}-" for first in ("a", "b")]
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
