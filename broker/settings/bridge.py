"""The Dramatiq bridge's settings (``cargoctl bridge``), and what its probes read."""

from __future__ import annotations

from pydantic import Field, field_validator

from broker.settings.common import BrokerSettings, CargoSettings


class BridgeHealthSettings(CargoSettings):
    """How the bridge is seen from outside: its heartbeat file and when that is stale
    (``cargoctl bridge health``)."""

    bridge_heartbeat_file: str = Field(default="/tmp/cargo-bridge-heartbeat.json",
                                       pattern=r"^(/.*)?$")  # absolute, or empty: off
    bridge_heartbeat_max_age: float = Field(default=30.0, gt=0, le=3600)


class BridgeSettings(BrokerSettings, BridgeHealthSettings):
    """What ``cargoctl bridge`` reads: which Dramatiq queues, declared how, and its metrics."""

    bridge_queues: str = Field(default="default",
                               pattern=r"^[A-Za-z0-9_.:-]+(,[A-Za-z0-9_.:-]+)*$",
                               description="comma-separated Dramatiq queues the bridge consumes")
    bridge_prefetch: int = Field(default=200, ge=1, le=65535)
    bridge_max_priority: int | None = Field(default=None, gt=0, le=255)
    bridge_dead_message_ttl: int = Field(default=604_800_000, gt=0)
    bridge_metrics_port: int = Field(default=9541, ge=0, le=65535)
    bridge_heartbeat_interval: float = Field(default=2.0, gt=0, le=60)

    @field_validator("bridge_queues")
    @classmethod
    def _dramatiq_queue_names(cls, value: str) -> str:
        for name in value.split(","):
            if name.endswith((".DQ", ".XQ")):
                raise ValueError(f"{name!r}: name the queue itself; its .DQ and .XQ come with it")
        return value

    @property
    def bridge_queue_names(self) -> tuple[str, ...]:
        """The Dramatiq queues the bridge consumes (each with its ``.DQ``)."""
        return tuple(dict.fromkeys(q for q in self.bridge_queues.split(",") if q))
