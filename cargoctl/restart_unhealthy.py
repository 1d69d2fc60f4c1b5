"""``cargoctl canary --restart-unhealthy``: delete worker pods whose heartbeat is stale.

Runs only when the canary failed. Lists the worker pods (label selector) through
the Kubernetes API, reads each running pod's heartbeat from its metrics endpoint
(``cargo_worker_heartbeat_timestamp_seconds``: when its consumer loop last ran;
``cargo_worker_broker_connected``), and deletes the stalest — a pod that does
not answer counts as stalest — never more than ``max_restarts`` at once: pods
already terminating use up the budget. A pod that is merely disconnected from
the broker is left alone (restarting it would not bring the broker back), as is
every pod when the heartbeat is fresh.
"""

from __future__ import annotations

import math
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class PodHeartbeat:
    name: str
    age: float  # seconds since its consumer loop ran; inf: no answer
    connected: bool
    detail: str


def default_namespace() -> str:
    try:
        return NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"


def core_api(api_url: str | None) -> Any:
    """CoreV1Api: in-cluster config, else ~/.kube/config, or a plain URL (kubectl proxy)."""
    from kubernetes import client, config

    if api_url:
        configuration = client.Configuration()
        configuration.host = api_url.rstrip("/")
        return client.CoreV1Api(client.ApiClient(configuration))
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CoreV1Api()


def read_heartbeat(url: str, timeout: float = 3.0) -> tuple[float | None, bool]:
    """(heartbeat timestamp, connected) from a worker's /metrics."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        text = resp.read().decode()
    beat, connected = None, False
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cargo_worker_heartbeat_timestamp_seconds":
                beat = sample.value
            elif sample.name == "cargo_worker_broker_connected":
                connected = sample.value == 1
    return beat, connected


def metrics_port(pod: Any, default: int) -> int:
    for container in pod.spec.containers or []:
        for port in container.ports or []:
            if port.name == "metrics":
                return int(port.container_port)
    return default


def heartbeat_of(pod: Any, default_port: int, now: float,
                 reader: Callable[[str], tuple[float | None, bool]]) -> PodHeartbeat:
    url = f"http://{pod.status.pod_ip}:{metrics_port(pod, default_port)}/metrics"
    try:
        beat, connected = reader(url)
    except Exception as exc:
        return PodHeartbeat(pod.metadata.name, math.inf, True,
                            f"no answer from {url}: {type(exc).__name__}")
    if beat is None:
        return PodHeartbeat(pod.metadata.name, math.inf, True, "no heartbeat metric")
    return PodHeartbeat(pod.metadata.name, now - beat, connected,
                        f"heartbeat {now - beat:.0f}s old")


def restart_unhealthy(api: Any, namespace: str, selector: str, *, max_age: float,
                      max_restarts: int, metrics_port_default: int,
                      reader: Callable[[str], tuple[float | None, bool]] = read_heartbeat,
                      log: Callable[[str], None] = print) -> list[str]:
    """Delete up to ``max_restarts`` (minus pods terminating) stale worker pods; their names."""
    pods = api.list_namespaced_pod(namespace, label_selector=selector).items
    terminating = [p for p in pods if p.metadata.deletion_timestamp is not None]
    budget = max_restarts - len(terminating)
    now = time.time()
    stale: list[PodHeartbeat] = []
    for pod in pods:
        if pod.metadata.deletion_timestamp is not None or pod.status.phase != "Running":
            continue
        if not pod.status.pod_ip:
            continue
        beat = heartbeat_of(pod, metrics_port_default, now, reader)
        if beat.connected and beat.age > max_age:
            stale.append(beat)
    stale.sort(key=lambda b: b.age, reverse=True)
    if not stale:
        log(f"restart-unhealthy: no worker pod with a stale heartbeat ({len(pods)} checked)")
        return []
    if budget <= 0:
        log(f"restart-unhealthy: {len(stale)} stale, but {len(terminating)} pod(s) still "
            f"terminating use the budget of {max_restarts}; deleting none")
        return []
    deleted = []
    for beat in stale[:budget]:
        api.delete_namespaced_pod(beat.name, namespace)
        log(f"restart-unhealthy: deleted pod {namespace}/{beat.name} ({beat.detail})")
        deleted.append(beat.name)
    if len(stale) > budget:
        log(f"restart-unhealthy: {len(stale) - budget} more stale pod(s) left for later runs "
            f"(at most {max_restarts} at once)")
    return deleted
