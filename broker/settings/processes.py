"""Which settings each process reads, and every process's settings at once."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from broker.settings.bridge import BridgeHealthSettings, BridgeSettings
from broker.settings.canary import CanarySettings
from broker.settings.common import BrokerSettings, CargoSettings
from broker.settings.gateway import GatewaySettings
from broker.settings.worker import WorkerHealthSettings, WorkerSettings

# Each process (a cargoctl command) and the class it loads. A variable is unknown
# only when no process here reads it; docs/configuration.md says which do.
PROCESSES: Mapping[str, type[CargoSettings]] = MappingProxyType({
    "gateway": GatewaySettings,
    "worker": WorkerSettings,
    "worker health": WorkerHealthSettings,
    "bridge": BridgeSettings,
    "bridge health": BridgeHealthSettings,
    "canary": CanarySettings,
    "topology": BrokerSettings,
})


class Settings(GatewaySettings, WorkerSettings, BridgeSettings, CanarySettings):
    """Every process's settings at once: for what stands in for several processes from one
    environment (tests, benchmarks, scripts). A process itself loads only its own class."""
