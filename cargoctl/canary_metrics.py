"""The canary's outcome as Prometheus metrics, pushed to a Pushgateway.

A CronJob lives seconds, too short to be scraped, so it pushes (Prometheus'
answer for batch jobs): job ``cargo-canary``, replacing the group each run.
``CargoCanaryFailing`` reads ``cargo_canary_success``;
``CargoCanaryNotRunning`` reads ``cargo_canary_last_run_timestamp_seconds``.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from cargoctl.canary import Outcome

JOB = "cargo-canary"


def canary_registry(outcome: Outcome, now: float | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("cargo_canary_success", "1 if the last canary run succeeded, else 0",
          registry=registry).set(1 if outcome.ok else 0)
    Gauge("cargo_canary_duration_seconds", "How long the last canary run took",
          registry=registry).set(outcome.seconds)
    Gauge("cargo_canary_last_run_timestamp_seconds", "Unix time of the last canary run",
          registry=registry).set(time.time() if now is None else now)
    return registry


def push(url: str, outcome: Outcome, timeout: float = 10.0) -> None:
    push_to_gateway(url, job=JOB, registry=canary_registry(outcome), timeout=timeout)
