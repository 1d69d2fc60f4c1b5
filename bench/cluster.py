"""Driving the local three-node cluster of ``scripts/rabbitmq-cluster.sh`` from Python.

Shared by ``bench.chaos`` and ``tests/integration/test_broker_cluster.py``: start
and stop the cluster through the project script (its message is the error when it
cannot), stop and start one node, find the node leading a quorum queue, and make
a private vhost on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from broker.management import ManagementClient

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "rabbitmq-cluster.sh"
NODES = ("a", "b", "c")
DEFAULT_BASE_PORT = 5681  # the script's default RABBITMQ_CLUSTER_BASE_PORT


def base_port() -> int:
    """The cluster's first AMQP port, as the script reads it (read when used)."""
    return int(os.environ.get("RABBITMQ_CLUSTER_BASE_PORT", DEFAULT_BASE_PORT))


class ClusterError(RuntimeError):
    """The script failed; the message is what it said."""


def run_script(*args: str, timeout: float = 300) -> str:
    """Run ``scripts/rabbitmq-cluster.sh ARGS`` (bounded); its output, or ClusterError."""
    try:
        done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"rabbitmq-cluster.sh {' '.join(args)} took over {timeout}s: "
                           f"{exc.stderr!r}") from None
    if done.returncode != 0:
        raise ClusterError(f"rabbitmq-cluster.sh {' '.join(args)} failed "
                           f"(exit {done.returncode}):\n{done.stderr}{done.stdout}")
    return done.stdout


def node_name(letter: str) -> str:
    return f"cargo-{letter}@localhost"


def letter_of(node: str) -> str:
    """``cargo-b@localhost`` -> ``b``."""
    name = node.split("@", 1)[0]
    if not name.startswith("cargo-") or name[len("cargo-"):] not in NODES:
        raise ValueError(f"{node!r} is not a node of the local cluster")
    return name[len("cargo-"):]


def amqp_url(letter: str, vhost: str) -> str:
    port = base_port() + NODES.index(letter)
    return f"amqp://guest:guest@127.0.0.1:{port}/{quote(vhost, safe='')}"


def management_url(letter: str) -> str:
    return f"http://guest:guest@127.0.0.1:{base_port() + 10000 + NODES.index(letter)}"


@dataclass(frozen=True)
class ClusterVhost:
    """A private vhost on the cluster; ``order`` rotates the addresses for one process."""

    vhost: str

    def url(self, first: str = "a") -> str:
        """RABBITMQ_URL naming all three nodes, starting with ``first``."""
        start = NODES.index(first)
        order = NODES[start:] + NODES[:start]
        return ",".join(amqp_url(letter, self.vhost) for letter in order)


def start() -> str:
    return run_script("start")


def stop() -> str:
    return run_script("stop", timeout=180)


def stop_node(letter: str) -> str:
    """Stop the RabbitMQ application on one node (its Erlang VM stays, as after a crash
    the orchestrator would restart it); the others carry on."""
    return run_script("ctl", letter, "stop_app", timeout=120)


def start_node(letter: str) -> str:
    out = run_script("ctl", letter, "start_app", timeout=180)
    run_script("ctl", letter, "await_startup", timeout=180)
    return out


async def create_vhost(via: str = "a", prefix: str = "cargo-cluster") -> ClusterVhost:
    vhost = f"{prefix}-{uuid.uuid4().hex[:8]}"
    async with ManagementClient(management_url(via)) as api:
        await api.create_vhost(vhost, "guest")
    return ClusterVhost(vhost)


async def delete_vhost(vhost: ClusterVhost, via: str = "a") -> None:
    async with ManagementClient(management_url(via)) as api:
        await api.delete_vhost(vhost.vhost)


def quorum_status(vhost: ClusterVhost, queue: str, via: str) -> list[dict[str, Any]]:
    """``rabbitmq-queues quorum_status``: one row per member, ``Raft State`` leader/follower."""
    rows: list[dict[str, Any]] = json.loads(run_script(
        "queues", via, "quorum_status", queue, "--vhost", vhost.vhost, "--formatter", "json",
        timeout=60))
    return rows


def stream_status(vhost: ClusterVhost, stream: str, via: str) -> list[dict[str, Any]]:
    """``rabbitmq-streams stream_status``: one row per member, ``role`` writer/replica."""
    rows: list[dict[str, Any]] = json.loads(run_script(
        "streams", via, "stream_status", stream, "--vhost", vhost.vhost, "--formatter", "json",
        timeout=60))
    return rows


def leader_of(vhost: ClusterVhost, queue: str, via: str = "a") -> str:
    """The letter of the node leading the quorum queue ``queue``."""
    rows = quorum_status(vhost, queue, via)
    leaders = [row["Node Name"] for row in rows if row.get("Raft State") == "leader"]
    if len(leaders) != 1:
        raise ClusterError(f"quorum queue {queue!r} has no single leader: {rows}")
    return letter_of(leaders[0])
